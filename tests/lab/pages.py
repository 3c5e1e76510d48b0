"""The pages the lab serves: a news site, the ISP's blockpage, an unknown notice page."""

from __future__ import annotations

BIG_PAGE_BYTES = 600 * 1024  # more than a throttled link carries within the probe's timeout


def site_page(name: str) -> str:
    """A news front page, about 8 kB, different per site."""
    items = "".join(
        f"<article><h2>{name}: report {i}</h2><p>{'Bishkek Almaty elections media ' * 8}"
        f"</p></article>" for i in range(20))
    return (f"<!doctype html><html><head><title>{name} | Independent news</title></head>"
            f"<body><h1>{name}</h1>{items}</body></html>")


def big_page(name: str) -> bytes:
    head = site_page(name).encode()
    return head + b"<!--" + b"x" * (BIG_PAGE_BYTES - len(head) - 7) + b"-->"


# A stub page like the ones Kazakh and Kyrgyz ISPs serve, with the marker of the lab's own
# blockpage fingerprint (probe/nettests/web_connectivity/blockpages.py), as a real ISP's page has
# its own wording.
BLOCKPAGE = ("<html><head><title>Доступ ограничен</title></head><body>"
             "<h1>Доступ к ресурсу ограничен</h1><!-- KUZOT-LAB-BLOCKPAGE -->"
             "<p>Доступ к данному ресурсу ограничен по решению уполномоченного органа.</p>"
             "</body></html>")

# An ISP's stub page in Russian that is in no fingerprint file (no lab marker, none of OONI's
# patterns): only its wording, through the unknown-blockpage rule, names it (the text follows
# the notices Kazakh ISPs serve, which cite a decision of the authorised state body).
UNKNOWN_BLOCKPAGE = ("<html><head><meta charset=\"utf-8\"><title>Уведомление</title></head>"
                     "<body><h2>Доступ ограничен</h2><p>Доступ к запрашиваемому интернет-ресурсу "
                     "ограничен в соответствии с решением уполномоченного государственного "
                     "органа.</p></body></html>")

# Where the ISP's redirector sends a blocked site's visitors: the address of Kyrgyz ISP
# Homeline's blockpage, the Location header of OONI's fingerprint ooni.kg_0.
REDIRECT_TO = "http://homeline.kg/access/blockpage.html"
REDIRECT_HOST = "homeline.kg"
# A second redirector sends visitors to a blockpage host no fingerprint knows by address: only
# the page it serves there (the ISP's blockpage) gives the block away.
REDIRECT_UNKNOWN_HOST = "stop.isp-lab.kz"
REDIRECT_UNKNOWN_TO = f"http://{REDIRECT_UNKNOWN_HOST}/"

# A page that no fingerprint knows: only the comparison with the control can flag it.
NOTICE = ("<html><head><title>Maintenance notice</title></head><body>"
          "<p>Service temporarily unavailable in your region.</p></body></html>")
