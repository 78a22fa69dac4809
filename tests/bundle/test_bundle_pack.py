"""Packing: determinism (same tree → same sha256), normalised metadata, ignore rules, symlink policy."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from test_bundle_rules import sprout_push

from sprout.bundle.pack import FIXED_MTIME, pack
from sprout.bundle.unpack import safe_unpack
from sprout.errors import BundleError

TREE = {
    "sprout.toml": "[app]\nname = 'hello'\nweb = 'python app.py'\n",
    "app.py": "print('hello')\n",
    "pkg/__init__.py": "",
    "pkg/views.py": "VIEWS = []\n",
    "static/css/site.css": "body { margin: 0 }\n",
    "bin/run": "#!/bin/sh\nexec python app.py\n",
}


def write_tree(root: Path, files: dict[str, str], order: list[str] | None = None) -> Path:
    for rel in order or list(files):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel])
    if (root / "bin/run").exists():
        (root / "bin/run").chmod(0o755)
    return root


def names(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def test_same_tree_packed_twice_gives_same_sha256(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", TREE)
    first = pack(app, tmp_path / "out1")
    second = pack(app, tmp_path / "out2")
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.path.name == f"{first.sha256}.tar.gz"
    assert first.files == len(TREE)
    assert first.size == first.path.stat().st_size


def test_copy_with_other_mtimes_modes_and_creation_order_gives_same_sha256(tmp_path: Path) -> None:
    original = pack(write_tree(tmp_path / "a", TREE), tmp_path / "out").sha256
    copy = write_tree(tmp_path / "b", TREE, order=sorted(TREE, reverse=True))
    for i, rel in enumerate(TREE):
        os.utime(copy / rel, (1_000_000 + i * 7919, 2_000_000_000 - i * 104729))
    (copy / "app.py").chmod(0o600)  # permission bits other than "executable" are normalised away
    assert pack(copy, tmp_path / "out").sha256 == original


def test_content_and_executable_bit_change_the_hash(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", TREE)
    base = pack(app, tmp_path / "out").sha256
    (app / "app.py").chmod(0o755)
    executable = pack(app, tmp_path / "out").sha256
    (app / "app.py").chmod(0o644)
    (app / "app.py").write_text("print('changed')\n")
    changed = pack(app, tmp_path / "out").sha256
    assert len({base, executable, changed}) == 3


def test_archive_metadata_is_normalised(tmp_path: Path) -> None:
    bundle = pack(write_tree(tmp_path / "app", TREE), tmp_path / "out")
    raw = bundle.path.read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08"
    assert raw[3] == 0, "no FNAME (or any other optional) gzip header field"
    assert raw[4:8] == b"\0\0\0\0", "gzip header mtime is zero"
    with tarfile.open(bundle.path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(TREE)
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (FIXED_MTIME, 0, 0, "", "")
        assert m.isreg()
        assert m.mode == (0o755 if m.name == "bin/run" else 0o644)


def test_pack_then_safe_unpack_round_trips(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", TREE)
    bundle = pack(app, tmp_path / "out")
    dest = tmp_path / "unpacked"
    safe_unpack(bundle.path, dest, expected_sha256=bundle.sha256)
    for rel, text in TREE.items():
        assert (dest / rel).read_text() == text
    assert os.access(dest / "bin/run", os.X_OK)


IGNORE_CASES = [
    pytest.param(
        {
            "app.py": "",
            ".git/config": "",
            ".venv/bin/python": "",
            "venv/lib/x.py": "",
            "__pycache__/app.cpython-311.pyc": "",
            "pkg/__pycache__/m.pyc": "",
            "stray.pyc": "",
            ".sprout/state.db": "",
            "web/node_modules/left-pad/index.js": "",
        },
        ["app.py"],
        id="always-skipped",
    ),
    pytest.param(
        {".gitignore": "*.log\n", "app.py": "", "debug.log": "", "sub/deep.log": ""},
        [".gitignore", "app.py"],
        id="glob-at-any-depth",
    ),
    pytest.param(
        {".gitignore": "/build\n", "build/out.js": "", "src/build/keep.js": ""},
        [".gitignore", "src/build/keep.js"],
        id="anchored-pattern",
    ),
    pytest.param(
        {".gitignore": "data/\n", "data/big.csv": "", "sub/data/x.csv": "", "other/data": ""},
        [".gitignore", "other/data"],
        id="folder-only-pattern",
    ),
    pytest.param(
        {".gitignore": "*.log\n!keep.log\n", "a.log": "", "keep.log": ""},
        [".gitignore", "keep.log"],
        id="negation",
    ),
    pytest.param(
        {".sproutignore": "tests/\n*.md\n", "app.py": "", "README.md": "", "tests/test_app.py": ""},
        [".sproutignore", "app.py"],
        id="sproutignore",
    ),
    pytest.param(
        {".gitignore": "*.env\n", ".sproutignore": "!prod.env\n", "dev.env": "", "prod.env": ""},
        [".gitignore", ".sproutignore", "prod.env"],
        id="sproutignore-overrides-gitignore",
    ),
    pytest.param(
        {"sub/.gitignore": "*.tmp\n", "top.tmp": "", "sub/x.tmp": "", "sub/y.py": ""},
        ["sub/.gitignore", "sub/y.py", "top.tmp"],
        id="nested-gitignore-is-local",
    ),
    pytest.param(
        {".gitignore": "*.txt\n", "sub/.gitignore": "!keep.txt\n", "a.txt": "", "sub/keep.txt": ""},
        [".gitignore", "sub/.gitignore", "sub/keep.txt"],
        id="nested-negation-overrides-parent",
    ),
    pytest.param(
        {".gitignore": "secret/\n!secret/ok.txt\n", "secret/ok.txt": "", "secret/key.pem": ""},
        [".gitignore"],
        id="ignored-folder-is-not-entered",
    ),
]


@pytest.mark.parametrize(("files", "expected"), IGNORE_CASES)
def test_ignore_rules(files: dict[str, str], expected: list[str], tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", files)
    bundle = pack(app, tmp_path / "out")
    assert names(bundle.path) == expected
    assert bundle.files == len(expected)


def test_out_dir_inside_the_app_is_not_packed(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {"app.py": ""})
    pack(app, app / "dist")
    bundle = pack(app, app / "dist")
    assert names(bundle.path) == ["app.py"]


def test_symlink_inside_tree_is_stored_as_regular_file(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {"real.txt": "content\n"})
    (app / "alias.txt").symlink_to("real.txt")
    with tarfile.open(pack(app, tmp_path / "out").path) as tar:
        alias = tar.getmember("alias.txt")
        assert alias.isreg()
        reader = tar.extractfile(alias)
        assert reader is not None
        assert reader.read() == b"content\n"


def test_symlink_outside_tree_is_refused(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {"app.py": ""})
    outside = tmp_path / "secret.txt"
    outside.write_text("s3cr3t")
    (app / "leak.txt").symlink_to(outside)
    with pytest.raises(BundleError) as err:
        pack(app, tmp_path / "out")
    assert str(err.value) == (
        f"{app}: leak.txt is a symlink to {outside}, outside the app folder; "
        "copy the file into the app or add the link to .sproutignore"
    )


def test_symlink_outside_tree_is_fine_when_ignored(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {"app.py": "", ".sproutignore": "leak.txt\n"})
    (app / "leak.txt").symlink_to(tmp_path)
    assert names(pack(app, tmp_path / "out").path) == [".sproutignore", "app.py"]


def test_symlink_to_folder_is_refused(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {"pkg/a.py": ""})
    (app / "alias").symlink_to("pkg")
    with pytest.raises(BundleError) as err:
        pack(app, tmp_path / "out")
    assert str(err.value) == (
        f"{app}: alias is a symlink to a folder; bundles hold regular files only, "
        "so replace it with the folder itself or add it to .sproutignore"
    )


def test_broken_symlink_is_refused(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {"app.py": ""})
    (app / "dangling").symlink_to("nowhere")
    with pytest.raises(BundleError) as err:
        pack(app, tmp_path / "out")
    assert str(err.value) == (
        f"{app}: dangling is a broken symlink (to 'nowhere'); fix it or add it to .sproutignore"
    )


def test_sprout_push_refuses_a_looping_symlink_naming_it(tmp_path: Path) -> None:
    """`ln -s self self` once crashed push with OSError ELOOP (a traceback, exit 1)."""
    app, home = write_tree(tmp_path / "app", {"sprout.toml": TREE["sprout.toml"]}), tmp_path / "home"
    (app / "self").symlink_to("self")
    done = sprout_push(app, home)
    assert (done.returncode, done.stdout) == (2, "")
    assert (
        done.stderr
        == f"error: {app}: self is a looping symlink (to 'self'); fix it or add it to .sproutignore\n"
    )
    assert not list(home.glob("**/*.tar.gz"))


def test_links_looping_through_each_other_are_refused(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {"app.py": ""})
    (app / "a").symlink_to("b")
    (app / "b").symlink_to("a")
    with pytest.raises(BundleError) as err:
        pack(app, tmp_path / "out")
    assert str(err.value) == f"{app}: a is a looping symlink (to 'b'); fix it or add it to .sproutignore"


def test_sprout_push_packs_around_an_ignored_looping_symlink(tmp_path: Path) -> None:
    app, home = tmp_path / "app", tmp_path / "home"
    write_tree(app, {"sprout.toml": TREE["sprout.toml"], "app.py": "", ".sproutignore": "self\n"})
    (app / "self").symlink_to("self")
    done = sprout_push(app, home)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("pushed hello v1 ")
    [bundle] = home.glob("**/*.tar.gz")
    assert names(bundle) == [".sproutignore", "app.py", "sprout.toml"]


@pytest.mark.parametrize(
    ("ignore", "target"),
    [
        ("self\n", "self"),  # looping
        ("*.lnk\n", "nowhere"),  # broken
        ("/self\n", "../../../../../../../../etc/passwd"),  # outside the app
        ("self/\n", "pkg"),  # a folder, ignored by a folder-only pattern
    ],
    ids=["looping", "broken", "outside", "folder-pattern"],
)
def test_an_ignored_symlink_may_point_anywhere(ignore: str, target: str, tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {"pkg/a.py": "", ".sproutignore": ignore})
    name = "self.lnk" if ignore == "*.lnk\n" else "self"
    (app / name).symlink_to(target)
    assert names(pack(app, tmp_path / "out").path) == [".sproutignore", "pkg/a.py"]


def test_a_looping_symlink_beside_file_secrets_is_refused_not_crashed(tmp_path: Path) -> None:
    """With `file:` secrets every path is resolved to compare it with them; Python 3.11's Path.resolve
    raised RuntimeError on a loop there, before the link was examined."""
    app = write_tree(
        tmp_path / "app",
        {
            "sprout.toml": '[app]\nname = "shop"\nweb = "run"\n[secrets]\nKEY = "file:key.txt"\n',
            "key.txt": "k",
        },
    )
    (app / "self").symlink_to("self")
    with pytest.raises(BundleError) as err:
        pack(app, tmp_path / "out")
    assert (
        str(err.value) == f"{app}: self is a looping symlink (to 'self'); fix it or add it to .sproutignore"
    )
    (app / ".sproutignore").write_text("self\n")
    packed = pack(app, tmp_path / "out")
    assert (sorted(packed.names), packed.secrets_left_out) == ([".sproutignore", "sprout.toml"], ("key.txt",))


def test_files_of_file_secrets_are_left_out_of_a_manifest_with_a_byte_order_mark(tmp_path: Path) -> None:
    """`sprout validate` accepts a manifest that starts with a UTF-8 BOM, so packing must read its secrets."""
    app = write_tree(tmp_path / "app", {"app.py": "", "secrets/token.txt": "s3cr3t\n"})
    manifest = '[app]\nname = "shop"\nweb = "run"\n[secrets]\nTOKEN = "file:secrets/token.txt"\n'
    (app / "sprout.toml").write_bytes(b"\xef\xbb\xbf" + manifest.encode())
    packed = pack(app, tmp_path / "out")
    assert sorted(packed.names) == ["app.py", "sprout.toml"]
    assert packed.secrets_left_out == ("secrets/token.txt",)


def test_fifo_is_refused(tmp_path: Path) -> None:
    app = write_tree(tmp_path / "app", {"app.py": ""})
    os.mkfifo(app / "pipe")
    with pytest.raises(BundleError) as err:
        pack(app, tmp_path / "out")
    assert str(err.value) == (
        f"{app}: pipe is not a regular file (socket, FIFO or device); remove it or add it to .sproutignore"
    )


def test_missing_app_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as err:
        pack(tmp_path / "nope", tmp_path / "out")
    assert str(err.value) == f"{tmp_path / 'nope'}: not a folder; give the app folder that holds sprout.toml"


def test_files_of_file_secrets_are_left_out_even_through_a_symlink(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "secrets").mkdir(parents=True)
    (app / "app.py").write_text("print('hi')\n")
    for name in ("token.txt", "db.txt", "signing.key"):
        (app / "secrets" / name).write_text(f"value of {name}\n")
    (app / "token-link.txt").symlink_to("secrets/token.txt")
    (app / "sprout.toml").write_text(
        '[app]\nname = "shop"\nweb = "python app.py"\n\n'
        '[secrets]\nTOKEN = "file:secrets/token.txt"\nKEY = { file = "./secrets/signing.key" }\n\n'
        '[resources.database]\nengine = "mysql"\nurl = "mysql://shop@h/shop"\npassword = "file:secrets/db.txt"\n'
    )
    packed = pack(app, tmp_path / "out")
    assert sorted(packed.names) == ["app.py", "sprout.toml"]
    assert packed.secrets_left_out == (
        "secrets/db.txt",
        "secrets/signing.key",
        "secrets/token.txt",
        "token-link.txt",
    )
    with tarfile.open(packed.path) as tar:
        assert sorted(tar.getnames()) == ["app.py", "sprout.toml"]
