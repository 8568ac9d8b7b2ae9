"""The year in a box: a supervised year on embedded defaults, driven by a simulated clock."""
