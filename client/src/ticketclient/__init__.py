"""ticketclient: pull, train, find and submit lottery tickets."""

__version__ = "0.1.0"
