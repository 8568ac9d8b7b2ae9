"""duban (督办): the command line and the runtime wiring around the domain packages."""
