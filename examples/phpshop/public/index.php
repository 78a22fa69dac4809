<?php
// The shop's front controller for `php -S`: static files, pages, the JSON API, health.
declare(strict_types=1);

require __DIR__ . '/../src/shop_all.php';

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?: '/';
$static = realpath(__DIR__ . $path);
if (str_starts_with($path, '/static/') && $static && str_starts_with($static, __DIR__ . '/static/')) {
    // Sent here, not by the built-in server (`return false`), which would drop the Cache-Control header.
    $types = ['css' => 'text/css', 'svg' => 'image/svg+xml', 'js' => 'text/javascript'];
    header('Content-Type: ' . ($types[pathinfo($static, PATHINFO_EXTENSION)] ?? 'application/octet-stream'));
    header('Cache-Control: public, max-age=' . (getenv('STATIC_MAX_AGE') ?: '86400'));
    readfile($static);
    return;
}

$instance = getenv('SPROUT_INSTANCE') ?: 'local';
$version = getenv('SPROUT_VERSION') ?: 'dev';
header("X-Sprout-Version: $version");
header("X-Sprout-Instance: $instance");
$json = str_contains($_SERVER['HTTP_ACCEPT'] ?? '', 'application/json');
$method = $_SERVER['REQUEST_METHOD'];

function reply(int $status, array $data, string $html): void
{
    global $json, $instance, $version;
    http_response_code($status);
    if ($json) {
        header('Content-Type: application/json');
        echo json_encode($data), "\n";
        return;
    }
    $zone = htmlspecialchars(getenv('SPROUT_ZONE') ?: '-');
    header('Content-Type: text/html; charset=utf-8');
    echo "<!doctype html><html><head><meta charset=utf-8><title>Tournament shop</title>",
        "<link rel=stylesheet href=\"/static/style.css?v=", htmlspecialchars($version), "\"></head><body>",
        "<header><a href=\"/\">Tournament shop</a> · <a href=\"/cart\">Cart</a></header><main>$html</main>",
        "<footer>served by instance ", htmlspecialchars($instance), " in zone $zone, version ",
        htmlspecialchars($version), "</footer></body></html>\n";
}

function money(int $cents): string
{
    return sprintf('€%d.%02d', intdiv($cents, 100), $cents % 100);
}

try {
    if ($path === '/healthz') {
        reply(200, ['status' => 'ok', 'instance' => $instance, 'version' => $version], 'ok');
    } elseif ($path === '/readyz') {
        $checks = [];
        try {
            connect()->query('SELECT 1');
            $checks['database'] = 'ok';
        } catch (Throwable $exc) {
            $checks['database'] = $exc->getMessage();
        }
        $ready = $checks['database'] === 'ok';
        reply($ready ? 200 : 503, ['ready' => $ready] + $checks, $ready ? 'ready' : 'not ready');
    } elseif ($path === '/' && $method === 'GET') {
        $products = catalogue(connect());
        $items = array_map(
            fn ($p) => sprintf(
                '<li><a href="/products/%s">%s</a> %s (%d left)</li>',
                $p['slug'], htmlspecialchars($p['name']), money($p['price_cents']), $p['stock']
            ),
            $products
        );
        reply(200, ['products' => $products], '<h1>Shop</h1><ul>' . implode('', $items) . '</ul>');
    } elseif (preg_match('#^/products/([a-z0-9-]+)$#', $path, $m) && $method === 'GET') {
        $product = product(connect(), $m[1]);
        if ($product === null) {
            reply(404, ['error' => 'not_found'], '<h1>Not found</h1>');
        } else {
            reply(200, ['product' => $product], sprintf(
                '<h1>%s</h1><p>%s, %d left</p><form method=post action="/cart/add">'
                . '<input type=hidden name=product_id value=%d><input name=quantity value=1 size=2>'
                . '<button>Add to cart</button></form>',
                htmlspecialchars($product['name']), money($product['price_cents']), $product['stock'], $product['id']
            ));
        }
    } elseif ($path === '/cart' && $method === 'GET') {
        start_session();
        $cart = $_SESSION['cart'] ?? [];
        session_write_close();
        [$lines, $total] = cart_lines(connect(), $cart);
        $rows = array_map(
            fn ($l) => sprintf('<li>%d × %s</li>', $l['quantity'], htmlspecialchars($l['product']['name'])),
            $lines
        );
        reply(
            200,
            ['lines' => (object) $cart, 'total_cents' => $total],
            '<h1>Your cart</h1><ul>' . implode('', $rows) . '</ul><p>Total ' . money($total)
            . '</p><form method=post action="/checkout"><button>Check out</button></form>'
        );
    } elseif ($path === '/cart/add' && $method === 'POST') {
        $id = (int) ($_POST['product_id'] ?? 0);
        $quantity = max(1, min(10, (int) ($_POST['quantity'] ?? 1)));
        start_session();
        $_SESSION['cart'][(string) $id] = ($_SESSION['cart'][(string) $id] ?? 0) + $quantity;
        $cart = $_SESSION['cart'];
        session_write_close();
        if (!$json) {
            header('Location: /cart', true, 303);
        }
        reply($json ? 200 : 303, ['cart' => $cart], '');
    } elseif ($path === '/checkout' && $method === 'POST') {
        start_session();
        $cart = $_SESSION['cart'] ?? [];
        if (!$cart) {
            session_write_close();
            reply(400, ['error' => 'empty_cart'], '<h1>Your cart is empty</h1>');
        } else {
            try {
                $code = checkout(connect(), $cart, $instance);
                unset($_SESSION['cart']);
                session_write_close();
                if (!$json) {
                    header("Location: /orders/$code", true, 303);
                }
                reply(201, ['order' => $code], '');
            } catch (SoldOut $exc) {
                session_write_close();
                $name = $exc->getMessage();
                reply(409, ['error' => 'sold_out', 'product' => $name], '<h1>Sorry, ' . htmlspecialchars($name)
                    . ' is sold out</h1>');
            }
        }
    } elseif (preg_match('#^/orders/([A-F0-9]+)$#', $path, $m) && $method === 'GET') {
        $order = order(connect(), $m[1]);
        if ($order === null) {
            reply(404, ['error' => 'not_found'], '<h1>Not found</h1>');
        } else {
            reply(200, ['order' => $order], sprintf(
                '<h1>Order %s is confirmed</h1><p>Total %s</p>', $order['code'], money((int) $order['total_cents'])
            ));
        }
    } else {
        reply(404, ['error' => 'not_found'], '<h1>Not found</h1>');
    }
} catch (Throwable $exc) {
    error_log("phpshop: {$exc->getMessage()}");
    reply(500, ['error' => 'internal'], '<h1>Something went wrong</h1>');
}
