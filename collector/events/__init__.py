"""Events told to people: the event book, event windows, the status page, and the words they
are told in (plain sentences, names of networks, charts, feeds); and what kinds of event there
are (``kinds``)."""
