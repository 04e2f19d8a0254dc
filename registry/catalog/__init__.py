"""The web catalog: home, catalog, task leaderboards, ticket pages and the pages for people."""
