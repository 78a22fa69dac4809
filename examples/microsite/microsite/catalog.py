"""The tournament catalogue the release command seeds: twenty products, prices in cents, opening stock."""

from __future__ import annotations

PRODUCTS: list[dict[str, object]] = [
    {
        "slug": "home-jersey",
        "name": "Home Jersey 2026",
        "price_cents": 8999,
        "stock": 400,
        "colour": "#c8102e",
    },
    {
        "slug": "away-jersey",
        "name": "Away Jersey 2026",
        "price_cents": 8999,
        "stock": 300,
        "colour": "#f4f4f4",
    },
    {
        "slug": "keeper-jersey",
        "name": "Goalkeeper Jersey",
        "price_cents": 9499,
        "stock": 80,
        "colour": "#1fa34a",
    },
    {"slug": "scarf", "name": "Supporters' Scarf", "price_cents": 2499, "stock": 600, "colour": "#c8102e"},
    {
        "slug": "match-ball",
        "name": "Official Match Ball",
        "price_cents": 14999,
        "stock": 150,
        "colour": "#ffffff",
    },
    {
        "slug": "signed-ball",
        "name": "Signed Match Ball",
        "price_cents": 49999,
        "stock": 50,
        "colour": "#d4af37",
    },
    {"slug": "cap", "name": "Tournament Cap", "price_cents": 2299, "stock": 350, "colour": "#002654"},
    {"slug": "flag", "name": "Fan Flag 90x150", "price_cents": 1499, "stock": 800, "colour": "#c8102e"},
    {"slug": "bottle", "name": "Water Bottle", "price_cents": 1299, "stock": 500, "colour": "#3a7bd5"},
    {"slug": "mug", "name": "Kick-off Mug", "price_cents": 1199, "stock": 450, "colour": "#f4f4f4"},
    {"slug": "keyring", "name": "Mini Ball Keyring", "price_cents": 699, "stock": 1000, "colour": "#222222"},
    {"slug": "poster", "name": "Squad Poster", "price_cents": 999, "stock": 700, "colour": "#ffcc00"},
    {"slug": "sticker-album", "name": "Sticker Album", "price_cents": 499, "stock": 900, "colour": "#ff6f00"},
    {
        "slug": "sticker-pack",
        "name": "Sticker Pack (5)",
        "price_cents": 129,
        "stock": 5000,
        "colour": "#ff6f00",
    },
    {"slug": "hoodie", "name": "Fan Hoodie", "price_cents": 5999, "stock": 250, "colour": "#002654"},
    {"slug": "training-top", "name": "Training Top", "price_cents": 4999, "stock": 200, "colour": "#444444"},
    {"slug": "shorts", "name": "Match Shorts", "price_cents": 3499, "stock": 300, "colour": "#ffffff"},
    {"slug": "socks", "name": "Match Socks", "price_cents": 1599, "stock": 400, "colour": "#c8102e"},
    {"slug": "gloves", "name": "Goalkeeper Gloves", "price_cents": 3999, "stock": 120, "colour": "#1fa34a"},
    {"slug": "backpack", "name": "Team Backpack", "price_cents": 4499, "stock": 180, "colour": "#002654"},
]

DESCRIPTION = "Official tournament merchandise. Limited stock: when it is gone, it is gone."
