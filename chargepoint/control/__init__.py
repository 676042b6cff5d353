"""Local control: the Unix socket the CLI talks to, over the station service API."""
