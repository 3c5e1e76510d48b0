"""Events told to people: the event book, event windows, the status page; and what kinds of
event there are (``kinds``)."""
