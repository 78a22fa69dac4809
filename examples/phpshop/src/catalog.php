<?php
// The tournament catalogue the release command seeds: the microsite's twenty products.
const PRODUCTS = [
    ['home-jersey', 'Home Jersey 2026', 8999, 400, '#c8102e'],
    ['away-jersey', 'Away Jersey 2026', 8999, 300, '#f4f4f4'],
    ['keeper-jersey', 'Goalkeeper Jersey', 9499, 80, '#1fa34a'],
    ['scarf', "Supporters' Scarf", 2499, 600, '#c8102e'],
    ['match-ball', 'Official Match Ball', 14999, 150, '#ffffff'],
    ['signed-ball', 'Signed Match Ball', 49999, 50, '#d4af37'],
    ['cap', 'Tournament Cap', 2299, 350, '#002654'],
    ['flag', 'Fan Flag 90x150', 1499, 800, '#c8102e'],
    ['bottle', 'Water Bottle', 1299, 500, '#3a7bd5'],
    ['mug', 'Kick-off Mug', 1199, 450, '#f4f4f4'],
    ['keyring', 'Mini Ball Keyring', 699, 1000, '#222222'],
    ['poster', 'Squad Poster', 999, 700, '#ffcc00'],
    ['sticker-album', 'Sticker Album', 499, 900, '#ff6f00'],
    ['sticker-pack', 'Sticker Pack (5)', 129, 5000, '#ff6f00'],
    ['hoodie', 'Fan Hoodie', 5999, 250, '#002654'],
    ['training-top', 'Training Top', 4999, 200, '#444444'],
    ['shorts', 'Match Shorts', 3499, 300, '#ffffff'],
    ['socks', 'Match Socks', 1599, 400, '#c8102e'],
    ['gloves', 'Goalkeeper Gloves', 3999, 120, '#1fa34a'],
    ['backpack', 'Team Backpack', 4499, 180, '#002654'],
];
