<?php
// The shop's own tests, plain PHP (the release gate runs `php -c php.ini tests/run.php`): connection
// strings always; with a mysql:// DATABASE_URL, migrations and checkout on a scratch database next to it.
declare(strict_types=1);

require __DIR__ . '/../src/shop_all.php';

$failed = 0;
$passed = 0;

function check(string $name, bool $ok): void
{
    global $failed, $passed;
    $ok ? $passed++ : $failed++;
    echo ($ok ? 'ok   ' : 'FAIL '), $name, "\n";
}

[$dsn, $user, $password] = pdo_params('mysql://shop:p%40ss@db.example:3307/shop');
check('a mysql:// URL becomes a PDO DSN', $dsn === 'mysql:host=db.example;port=3307;dbname=shop;charset=utf8mb4');
check('user and password are URL-decoded', $user === 'shop' && $password === 'p@ss');
try {
    pdo_params('sqlite:////tmp/shop.sqlite3');
    check('a sqlite URL is refused', false);
} catch (InvalidArgumentException $exc) {
    check('a sqlite URL is refused', str_contains($exc->getMessage(), 'needs mysql://'));
}
check(
    'save_path lists the nodes sorted, whatever zone comes first',
    memcached_save_path('memcached://127.0.0.1:2,127.0.0.1:1', 0.01) === '127.0.0.1:1,127.0.0.1:2'
);

$url = getenv('DATABASE_URL') ?: '';
if (str_starts_with($url, 'mysql://')) {
    $scratch = 'phpshop_test_' . bin2hex(random_bytes(4));
    $server = connect(preg_replace('#/[^/?]+(\?.*)?$#', '/mysql', $url));
    $server->exec("CREATE DATABASE `$scratch`");
    try {
        $db = connect(preg_replace('#/[^/?]+(\?.*)?$#', "/$scratch", $url));
        check('the migration seeds twenty products', count(migrate($db)) === 20);
        check('a second migration adds nothing', migrate($db) === []);
        $ball = product($db, 'signed-ball');
        $db->exec("UPDATE products SET stock = 1 WHERE slug = 'signed-ball'");
        $code = checkout($db, [(string) $ball['id'] => 1], 'test');
        check('checkout creates the order', order($db, $code)['lines'][0]['quantity'] === 1);
        try {
            checkout($db, [(string) $ball['id'] => 1], 'test');
            check('the last one sold, checkout says sold out', false);
        } catch (SoldOut $exc) {
            check('the last one sold, checkout says sold out', $exc->getMessage() === 'Signed Match Ball');
        }
        check('stock never goes below zero', (int) product($db, 'signed-ball')['stock'] === 0);
    } finally {
        $server->exec("DROP DATABASE `$scratch`");
    }
} else {
    echo "skip database tests: DATABASE_URL is not mysql://\n";
}

echo "$passed passed, $failed failed\n";
exit($failed ? 1 : 0);
