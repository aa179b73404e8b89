"""Tools that run beside Chorus (simulators, helpers); no service imports them."""
