"""Native notifications: signed webhooks, Telegram and e-mail, for deployments without
Alertmanager.

Detection hands events (design §4 JSON, or ``EventView``) to ``Notifier.publish``; what to say
is decided per destination by the pure ``decide``; ``templates`` words it in English or
Russian; ``channels`` delivers; ``dispatch`` dedups, rate-limits, coalesces and retries.

The package imports none of its modules: ``templates`` words events with the status page's
sentences, which read ``notify.event``; importing ``dispatch`` here would close a circle.
"""
