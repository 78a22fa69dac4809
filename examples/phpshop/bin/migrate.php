<?php
// The release command: create missing tables and seed missing products; safe to run on every deploy.
declare(strict_types=1);

require __DIR__ . '/../src/catalog.php';
require __DIR__ . '/../src/db.php';

$added = migrate(connect());
echo 'phpshop: schema up to date; ', count($added), " product(s) added\n";
