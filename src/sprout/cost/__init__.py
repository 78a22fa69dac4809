"""Cost: prices per size, accounting from instance lifetimes, reports and recommendations."""
