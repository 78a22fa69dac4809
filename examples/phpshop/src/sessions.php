<?php
// Sessions in PHP's own memcached handler (settings in php.ini); only the node list comes from Sprout.

/**
 * session.save_path for the memcached handler: the nodes of a `memcached://h1:p1,h2:p2` SESSION_STORE_URL
 * that accept a connection (all of them if none does).
 *
 * libmemcached writes each session to its node and the replica, but a read whose node is down returns a
 * miss instead of asking the replica; a node left out of the list is never asked. Sprout's nodes refuse
 * connections until they hold their peers' sessions, so a node that accepts one is never empty.
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

/** Start the session on the nodes SESSION_STORE_URL names (the handler's defaults when it is unset). */
function start_session(): void
{
    $url = getenv('SESSION_STORE_URL');
    if ($url) {
        ini_set('session.save_path', memcached_save_path($url));
    }
    session_start();
}
