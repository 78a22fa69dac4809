<?php
// Everything the shop's entry points share: the catalogue, the database, sessions, checkout.
require __DIR__ . '/catalog.php';
require __DIR__ . '/db.php';
require __DIR__ . '/sessions.php';
require __DIR__ . '/shop.php';
