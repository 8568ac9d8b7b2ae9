"""The department check-in portal: signed-link form pages served by `duban portal`."""
