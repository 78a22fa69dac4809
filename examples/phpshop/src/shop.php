<?php
// Catalogue reads and the checkout transaction, which never sells stock that is not there.

final class SoldOut extends RuntimeException
{
}

/** Every product, by id. */
function catalogue(PDO $db): array
{
    return $db->query('SELECT id, slug, name, price_cents, stock, colour FROM products ORDER BY id')->fetchAll();
}

/** One product by slug, or null. */
function product(PDO $db, string $slug): ?array
{
    $query = $db->prepare('SELECT id, slug, name, price_cents, stock, colour FROM products WHERE slug = ?');
    $query->execute([$slug]);
    return $query->fetch() ?: null;
}

/** The cart's lines with their products and the total: [lines, total_cents]. */
function cart_lines(PDO $db, array $cart): array
{
    $lines = [];
    $total = 0;
    foreach (catalogue($db) as $product) {
        $quantity = $cart[(string) $product['id']] ?? 0;
        if ($quantity > 0) {
            $lines[] = ['product' => $product, 'quantity' => $quantity];
            $total += $quantity * $product['price_cents'];
        }
    }
    return [$lines, $total];
}

/**
 * Take the cart's stock and create its order in one transaction; the order's code.
 *
 * Each line is a conditional update (`stock >= quantity`), in id order so two carts cannot deadlock, and
 * its row count says whether the stock was there: any line short rolls the whole order back (SoldOut).
 */
function checkout(PDO $db, array $cart, string $instance): string
{
    ksort($cart);
    for ($attempt = 1; ; $attempt++) {
        try {
            $db->beginTransaction();
            $take = $db->prepare('UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ?');
            $price = $db->prepare('SELECT name, price_cents FROM products WHERE id = ?');
            $total = 0;
            $items = [];
            foreach ($cart as $id => $quantity) {
                $price->execute([(int) $id]);
                $product = $price->fetch();
                $take->execute([$quantity, (int) $id, $quantity]);
                if ($product === false || $take->rowCount() !== 1) {
                    $db->rollBack();
                    throw new SoldOut($product['name'] ?? "product $id");
                }
                $total += $quantity * $product['price_cents'];
                $items[] = [(int) $id, $quantity, $product['price_cents']];
            }
            $code = strtoupper(bin2hex(random_bytes(5)));
            $db->prepare('INSERT INTO orders (code, total_cents, created_at, instance) VALUES (?, ?, NOW(), ?)')
                ->execute([$code, $total, $instance]);
            $order = (int) $db->lastInsertId();
            $item = $db->prepare(
                'INSERT INTO order_items (order_id, product_id, quantity, price_cents) VALUES (?, ?, ?, ?)'
            );
            foreach ($items as [$id, $quantity, $cents]) {
                $item->execute([$order, $id, $quantity, $cents]);
            }
            $db->commit();
            return $code;
        } catch (PDOException $exc) {
            if ($db->inTransaction()) {
                $db->rollBack();
            }
            // 1213 deadlock, 1205 lock wait timeout: the transaction was rolled back, so try it again.
            $retry = in_array($exc->errorInfo[1] ?? 0, [1205, 1213], true) && $attempt < 5;
            if (!$retry) {
                throw $exc;
            }
        }
    }
}

/** An order and its lines by code, or null. */
function order(PDO $db, string $code): ?array
{
    $query = $db->prepare('SELECT id, code, total_cents, created_at, instance FROM orders WHERE code = ?');
    $query->execute([$code]);
    $order = $query->fetch();
    if ($order === false) {
        return null;
    }
    $lines = $db->prepare(
        'SELECT p.name, i.quantity, i.price_cents FROM order_items i JOIN products p ON p.id = i.product_id
         WHERE i.order_id = ? ORDER BY p.id'
    );
    $lines->execute([$order['id']]);
    $order['lines'] = $lines->fetchAll();
    return $order;
}
