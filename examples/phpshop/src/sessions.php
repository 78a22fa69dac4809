<?php
// Sessions in PHP's own memcached handler (settings in php.ini); only the node list comes from Sprout.

/**
 * session.save_path for the memcached handler: the nodes of a `memcached://h1:p1,h2:p2` SESSION_STORE_URL
 * that accept a connection (all of them if none does).
 *
 * libmemcached writes each session to its node and the replica, but a read whose node is down returns a
 * miss instead of asking the replica; a node left out of the list is never asked. Sprout's nodes refuse
 * connections until they hold their peers' sessions (all but the last second's: see start_session).
 * Sorted: Sprout lists the instance's own zone first, but libmemcached puts a session's replica on the
 * next node *in list order*, so every instance must list the nodes alike.
 */
function memcached_save_path(string $url, float $timeout = 0.25): string
{
    if (strncmp($url, 'memcached://', 12) !== 0) {
        throw new InvalidArgumentException("SESSION_STORE_URL $url: phpshop needs memcached://host:port,...");
    }
    $nodes = explode(',', explode('/', substr($url, 12), 2)[0]);
    sort($nodes);
    $up = array_values(array_filter($nodes, fn ($node) => accepts($node, $timeout)));
    return implode(',', $up ?: $nodes);
}

/** Whether `host:port` accepts a TCP connection within `timeout` seconds. */
function accepts(string $node, float $timeout): bool
{
    $at = strrpos($node, ':');
    $connection = @fsockopen(substr($node, 0, $at), (int) substr($node, $at + 1), $errno, $error, $timeout);
    if ($connection === false) {
        return false;
    }
    fclose($connection);
    return true;
}

/**
 * Start the session on the nodes SESSION_STORE_URL names (the handler's defaults when it is unset).
 *
 * A node that has just come back may not yet hold a session written to its peer in the last moments
 * (Sprout's refill copies those within milliseconds of reopening its port), and the handler would read
 * that miss as an unknown session: strict mode gives the browser a new, empty one. So a session id the
 * browser sent that reads as unknown is looked up on every node; found, it is copied back and started.
 */
function start_session(): void
{
    $url = getenv('SESSION_STORE_URL');
    if (!$url) {
        session_start();
        return;
    }
    $path = memcached_save_path($url);
    ini_set('session.save_path', $path);
    $asked = $_COOKIE[session_name()] ?? null;
    session_start();
    if (is_string($asked) && $asked !== session_id() && restore_session($path, $asked)) {
        session_abort();
        header_remove('Set-Cookie');
        session_id($asked);
        session_start();
    }
}

/** Copy session `id` from a node of `path` that holds it to the nodes that do not; whether one held it. */
function restore_session(string $path, string $id): bool
{
    if (!preg_match('/^[A-Za-z0-9,-]{22,256}$/', $id)) {
        return false;
    }
    $key = ini_get('memcached.sess_prefix') . $id;
    $missing = [];
    $data = null;
    foreach (explode(',', $path) as $node) {
        $at = strrpos($node, ':');
        $client = new Memcached();
        // Stored as the handler stores it: the raw string, never compressed or serialized.
        $client->setOption(Memcached::OPT_COMPRESSION, false);
        $client->setOption(Memcached::OPT_CONNECT_TIMEOUT, 250);
        $client->addServer(substr($node, 0, $at), (int) substr($node, $at + 1));
        $value = $client->get($key);
        if (is_string($value)) {
            $data = $value;
        } elseif ($client->getResultCode() === Memcached::RES_NOTFOUND) {
            $missing[] = $client;
        }
    }
    if ($data === null) {
        return false;
    }
    foreach ($missing as $client) {
        // `add`: a write by another request since is newer than this copy and is kept.
        $client->add($key, $data, (int) ini_get('session.gc_maxlifetime'));
    }
    return true;
}
