"""Events as people read them: plain sentences, names of networks, pages, charts and feeds."""
