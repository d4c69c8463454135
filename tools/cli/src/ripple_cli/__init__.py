"""ripple's operator CLI (`ripple COMMAND`)."""
