"""Flask's tutorial app (flaskr), cut to its database part and ported to Sprout by docs/porting.md."""

import os

from flask import Flask, jsonify, request

from flaskr import db


def create_app():
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY="dev",
        # Ported (step 1): the database file is the one DATABASE_URL names, outside the app folder.
        DATABASE=db.path_from_url(
            os.environ.get("DATABASE_URL"), os.path.join(app.instance_path, "flaskr.sqlite")
        ),
    )
    db.init_app(app)

    @app.get("/")
    def index():
        posts = db.get_db().execute("SELECT title FROM post ORDER BY id").fetchall()
        return jsonify(version=os.environ.get("SPROUT_VERSION"), posts=[row["title"] for row in posts])

    @app.post("/create")
    def create():
        database = db.get_db()
        database.execute("INSERT INTO post (title, body) VALUES (?, ?)", (request.form["title"], ""))
        database.commit()
        return jsonify(created=request.form["title"])

    return app
