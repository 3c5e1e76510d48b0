"""Native notifications: signed webhooks, Telegram and e-mail, for deployments without
Alertmanager.

Detection hands events (design §4 JSON, or ``EventView``) to ``Notifier.publish``; what to say
is decided per destination by the pure ``decide``; ``templates`` words it in English or
Russian; ``channels`` delivers; ``dispatch`` dedups, rate-limits, coalesces and retries.
"""

from collector.notify.decide import Transition, decide
from collector.notify.dispatch import Notifier
from collector.notify.event import EventView

__all__ = ["EventView", "Notifier", "Transition", "decide"]
