"""The campaign shop for a football tournament: catalogue, cart in the session store, orders in the database."""
