<?php
// The shop's database: PDO MySQL from DATABASE_URL (mysql://user:password@host:port/name).

/** PDO's DSN, user and password for a `mysql://` DATABASE_URL; an InvalidArgumentException for others. */
function pdo_params(string $url): array
{
    $parts = parse_url($url);
    if ($parts === false || ($parts['scheme'] ?? '') !== 'mysql' || empty($parts['path'])) {
        throw new InvalidArgumentException("DATABASE_URL $url: phpshop needs mysql://user@host:port/name");
    }
    $dsn = sprintf(
        'mysql:host=%s;port=%d;dbname=%s;charset=utf8mb4',
        $parts['host'] ?? '127.0.0.1',
        $parts['port'] ?? 3306,
        ltrim($parts['path'], '/')
    );
    return [$dsn, rawurldecode($parts['user'] ?? 'root'), rawurldecode($parts['pass'] ?? '')];
}

/** A connection to the database named by DATABASE_URL (or `$url`): exceptions on errors, real prepares. */
function connect(?string $url = null): PDO
{
    [$dsn, $user, $password] = pdo_params($url ?? (getenv('DATABASE_URL') ?: ''));
    return new PDO($dsn, $user, $password, [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
        PDO::ATTR_EMULATE_PREPARES => false,
        PDO::ATTR_TIMEOUT => 3,
    ]);
}

/** Create the tables if missing and seed the products that are missing; the slugs added. */
function migrate(PDO $db): array
{
    $db->exec('CREATE TABLE IF NOT EXISTS products (
        id INT AUTO_INCREMENT PRIMARY KEY, slug VARCHAR(64) NOT NULL UNIQUE, name VARCHAR(120) NOT NULL,
        price_cents INT NOT NULL, stock INT NOT NULL, colour VARCHAR(7) NOT NULL, CHECK (stock >= 0)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
    $db->exec('CREATE TABLE IF NOT EXISTS orders (
        id INT AUTO_INCREMENT PRIMARY KEY, code VARCHAR(16) NOT NULL UNIQUE, total_cents INT NOT NULL,
        created_at DATETIME NOT NULL, instance VARCHAR(64) NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
    $db->exec('CREATE TABLE IF NOT EXISTS order_items (
        order_id INT NOT NULL, product_id INT NOT NULL, quantity INT NOT NULL, price_cents INT NOT NULL,
        PRIMARY KEY (order_id, product_id),
        FOREIGN KEY (order_id) REFERENCES orders (id), FOREIGN KEY (product_id) REFERENCES products (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4');
    $present = $db->query('SELECT slug FROM products')->fetchAll(PDO::FETCH_COLUMN);
    $insert = $db->prepare(
        'INSERT INTO products (slug, name, price_cents, stock, colour) VALUES (?, ?, ?, ?, ?)'
    );
    $added = [];
    foreach (PRODUCTS as $product) {
        if (!in_array($product[0], $present, true)) {
            $insert->execute($product);
            $added[] = $product[0];
        }
    }
    return $added;
}
