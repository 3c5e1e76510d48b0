"""Events told to people: the event book, event windows, the status page."""
