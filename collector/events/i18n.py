"""The words of the status page, the feed and the alerts, in English, Russian, Kyrgyz, Kazakh.

English and Russian are complete: every key exists in both (a test checks it). Kyrgyz and
Kazakh carry the page's fixed text (headings, table heads, tiers, kinds, countries, the footer);
any sentence they lack falls back to Russian, which readers in both countries read, and then to
English. The English and Russian texts were written by the project's maintainers; the Kyrgyz and
Kazakh texts are the maintainers' own drafts awaiting review by native speakers (corrections
welcome, key by key).

Texts are for people reading during a protest: short, exact, no internal keys. Placeholders are
``str.format`` fields; counts go through ``plural`` (Russian has three forms).
"""

from __future__ import annotations

import re
from typing import Literal, cast

Language = Literal["en", "ru", "ky", "kk"]
LANGUAGES: tuple[Language, ...] = ("en", "ru", "ky", "kk")
LANGUAGE_NAMES: dict[Language, str] = {"en": "English", "ru": "Русский", "ky": "Кыргызча",
                                       "kk": "Қазақша"}
FALLBACK: dict[Language, tuple[Language, ...]] = {
    "en": ("en",), "ru": ("ru", "en"), "ky": ("ky", "ru", "en"), "kk": ("kk", "ru", "en")}
# The language people in each country read the tier words and kinds in, for HTML lang=.
DEFAULT: Language = "en"

EN: dict[str, str] = {
    "kind.shutdown": "Internet shutdown", "kind.block": "Blocking",
    "kind.throttling": "Throttling", "kind.monitor_outage": "Monitor outage",
    "kind.monitor_blocked": "Monitor blocked",
    "tier.suspected": "suspected", "tier.likely": "likely", "tier.confirmed": "confirmed",
    "country.KG": "Kyrgyzstan", "country.KZ": "Kazakhstan", "country.ZZ": "every country",
    "title": "{kind} in {country}",
    "label.what": "What", "label.where": "Where", "label.since": "Since",
    "label.when": "When", "label.sure": "How sure", "label.how": "How",
    "label.outside": "From outside",
    "outside.unreachable": "{network} does not answer from outside the country: {up} of "
                           "{total} address blocks respond (usually {usual}).",
    "outside.reachable": "{network} answers from outside the country: {up} of {total} "
                         "address blocks respond (usually {usual}).",
    "sure.outside": "Suspected: seen only by probing the networks from outside the country; "
                    "no probe inside confirms it yet.",
    "what.shutdown": "Internet access is cut off.",
    "what.shutdown_mobile": "Mobile Internet access is cut off.",
    "what.block": "These sites and services cannot be reached: {targets}.",
    "what.block_all": "All sites and services are blocked.",
    "what.throttling": "These sites and services are slowed down: {targets}.",
    "what.throttling_all": "Internet traffic is slowed down.",
    "what.more": "and {n} more",
    "where.networks": "{country}, on {networks}.",
    "where.all": "{country}, all networks.",
    "network.unknown": "a network not known",
    "since.open": "{local} local time ({utc} UTC), for {duration} so far.",
    "start": "{local} local time ({utc} UTC)",
    "since.open_utc": "{utc} UTC, for {duration} so far.",
    "since.closed_utc": "From {utc} to {utc_end} UTC, {duration}.",
    "start_utc": "{utc} UTC",
    "since.closed": "From {local} to {local_end} local time ({utc} to {utc_end} UTC), "
                    "{duration}.",
    "duration.days": "{d} d {h} h", "duration.hours": "{h} h {m} min",
    "duration.minutes": "{m} min",
    "probes.one": "{n} probe", "probes.many": "{n} probes",
    "networks.one": "{n} network", "networks.many": "{n} networks",
    "sure.suspected": "Suspected: seen by {probes} on {networks}, not yet by others.",
    "sure.likely": "Likely: seen by {probes} on {networks} at the same time.",
    "sure.confirmed": "Confirmed: seen by {probes} on {networks}{why}.",
    "why.blockpage": ", and a known block page was seen",
    "why.mitm": ", and a certificate not issued to the site (interception) was seen",
    "why.fingerprint": ", and a known censorship fingerprint was seen",
    "why.networks": ", on several networks at once",
    "how": "{mechanism}{layer}.",
    "layer": " (at the {layer} step)",
    "mech.nxdomain": "The name lookup says the site does not exist",
    "mech.bogon": "The name lookup returns a private or invalid address",
    "mech.injected": "Forged name lookup answers are injected",
    "mech.spoofed": "The name lookup returns a wrong address",
    "mech.servfail": "The name lookup fails",
    "mech.no_answer": "The name lookup returns no address",
    "mech.reset": "Connections are cut off (reset)",
    "mech.refused": "Connections are refused",
    "mech.timeout": "Connections hang until they time out",
    "mech.eof": "Connections are closed early",
    "mech.mitm": "A certificate not issued to the site is presented (interception)",
    "mech.blockpage": "A block page is shown instead of the site",
    "mech.diff": "A different page is returned than from outside the country",
    "mech.sni_throttle": "Traffic to the site's name is slowed down",
    "mech.ip_throttle": "Traffic to the site's address is slowed down",
    "mech.other": "Failure seen: {value}",
    "shutdown.silent": "Probes on these networks stopped reaching anything outside the "
                       "country at the same time.",
    "h.seen": "What the probes saw",
    "seen.none": "No sample measurement is stored for this event yet.",
    "seen.none_shutdown": "During a shutdown the probes cannot send anything: the evidence is "
                          "their silence, measured from outside.",
    "seen.intro": "Sample measurements during this event, beside what our server outside the "
                  "country (the control) saw for the same site:",
    "th.time": "Time (UTC)", "th.site": "Site", "th.result": "Result",
    "th.control": "From outside", "th.measurement": "Measurement",
    "control.ok": "loaded", "control.failed": "failed too", "control.none": "not measured",
    "verdict.ok": "reachable", "verdict.blocked": "blocked", "verdict.throttled": "slowed down",
    "verdict.down": "down everywhere", "verdict.inconclusive": "unclear",
    "open_json": "full data (JSON)",
    "cat.NEWS": "news media", "cat.HUMR": "human rights", "cat.POLR": "political criticism",
    "cat.ANON": "circumvention tools", "cat.COMT": "communication tools",
    "cat.GRP": "social networks", "cat.MMED": "video and media sharing",
    "cat.CTRL": "control site", "cat.HOST": "hosting and blogging", "cat.GOVT": "government",
    "cat.LGBT": "LGBTQ+", "cat.REL": "religion",
    # Page.
    "site.title": "Kuzot: Internet shutdowns, blocking and throttling",
    "site.about": "{countries}. Updated {time} UTC. This page refreshes every {minutes} "
                  "minutes.",
    "h.now": "Now", "now.count.one": "{n} open event", "now.count.many": "{n} open events",
    "now.none": "No open events. Probes keep measuring.",
    "h.countries": "By country", "h.networks": "By network",
    "h.timeline": "Last 7 days, hour by hour", "h.ended": "Ended in the last 7 days",
    "h.monitor": "When Kuzot could not observe", "h.latest": "Latest result per site and network",
    "h.targets": "Sites and services", "h.subscribe": "Subscribe",
    "th.country": "Country", "th.status": "Status", "th.networks": "Networks",
    "th.reachable": "Reachable", "th.blocked": "Blocked", "th.throttled": "Throttled",
    "th.network": "Network", "th.last": "Last measured (UTC)", "th.verdict": "Result",
    "status.none": "No open event", "status.noprobes": "No probes here",
    "country.noprobes": "No probes in {country} yet: we cannot see what happens there.",
    "networks.none": "No networks measured yet.", "latest.none": "No measurements yet.",
    "timeline.legend": "Red: Internet shutdown. Orange: blocking. Yellow: throttling. "
                       "Grey: no event. Each hour shows the most severe event.",
    "timeline.none": "No events in the last 7 days.",
    "h.outside": "Seen from outside the country, hour by hour",
    "outside.chart.label": "Share of address blocks answering from outside, per network, "
                           "last 7 days",
    "outside.chart.cell": "{share}% of the address blocks answer",
    "outside.chart.legend": "Bar height: the share of each network's address blocks that "
                            "answer our probes sent from outside the country (full: all of "
                            "them). Grey: not probed in that hour. Beside the probes' events "
                            "above: when both drop, the two signals agree.",
    "timeline.label": "Events per hour in {where}, last 7 days",
    "details": "Details and evidence", "all_events": "All events",
    "subscribe.all": "All events (Atom feed)", "subscribe.country": "{country} (Atom feed)",
    "footer.data": "Open data", "footer.tiers":
        "How sure: suspected means one probe saw it; likely means several independent probes "
        "saw it at the same time; confirmed means likely, and a known block page, a forged "
        "certificate, or several networks at once.",
    "footer.times": "Times are local time, with UTC beside them.",
    "footer.language": "Language",
    "outage.collector_down": "The collector was down.",
    "outage.control_unreachable": "The control answered no probe.",
    "outage.other": "The monitor could not observe.",
    "outage.note": "Not an Internet shutdown: failures measured meanwhile are not evidence.",
    "notfound": "No such event (it may have ended more than a week ago).",
    "feed.title": "Kuzot: events", "feed.country": "Kuzot: events in {country}",
    # Alerts.
    "alert.opened": "{title} ({tier})",
    "alert.escalated": "{title}: now {tier} (was {previous})",
    "alert.closed": "{title}: ended",
    "alert.digest": "{n} events changed:",
    "alert.link": "Details: {link}",
}

RU: dict[str, str] = {
    "kind.shutdown": "Отключение интернета", "kind.block": "Блокировка",
    "kind.throttling": "Замедление", "kind.monitor_outage": "Сбой мониторинга",
    "kind.monitor_blocked": "Блокировка мониторинга",
    "tier.suspected": "предположительно", "tier.likely": "вероятно",
    "tier.confirmed": "подтверждено",
    "country.KG": "Кыргызстан", "country.KZ": "Казахстан", "country.ZZ": "все страны",
    "title": "{kind}: {country}",
    "label.what": "Что", "label.where": "Где", "label.since": "С какого времени",
    "label.when": "Когда", "label.sure": "Насколько точно", "label.how": "Как",
    "label.outside": "Извне",
    "outside.unreachable": "{network} не отвечает из-за рубежа: отвечают {up} из {total} "
                           "блоков адресов (обычно {usual}).",
    "outside.reachable": "{network} отвечает из-за рубежа: отвечают {up} из {total} блоков "
                         "адресов (обычно {usual}).",
    "sure.outside": "Предположительно: видно только при проверке сетей из-за рубежа; зонды "
                    "внутри пока не подтверждают.",
    "what.shutdown": "Доступ в интернет отключён.",
    "what.shutdown_mobile": "Мобильный интернет отключён.",
    "what.block": "Недоступны сайты и сервисы: {targets}.",
    "what.block_all": "Заблокированы все сайты и сервисы.",
    "what.throttling": "Замедлены сайты и сервисы: {targets}.",
    "what.throttling_all": "Интернет-трафик замедлен.",
    "what.more": "и ещё {n}",
    "where.networks": "{country}, сети: {networks}.",
    "where.all": "{country}, все сети.",
    "network.unknown": "неизвестная сеть",
    "since.open": "{local} по местному времени ({utc} UTC), уже {duration}.",
    "start": "{local} по местному времени ({utc} UTC)",
    "since.open_utc": "{utc} UTC, уже {duration}.",
    "since.closed_utc": "С {utc} до {utc_end} UTC, {duration}.",
    "start_utc": "{utc} UTC",
    "since.closed": "С {local} до {local_end} по местному времени ({utc} – {utc_end} UTC), "
                    "{duration}.",
    "duration.days": "{d} д {h} ч", "duration.hours": "{h} ч {m} мин",
    "duration.minutes": "{m} мин",
    "probes.one": "{n} зонд", "probes.few": "{n} зонда", "probes.many": "{n} зондов",
    "networks.one": "{n} сеть", "networks.few": "{n} сети", "networks.many": "{n} сетей",
    "sure.suspected": "Предположительно: видит {probes} ({networks}); другие пока не "
                      "подтвердили.",
    "sure.likely": "Вероятно: одновременно видят {probes}, {networks}.",
    "sure.confirmed": "Подтверждено: видят {probes}, {networks}{why}.",
    "why.blockpage": ", замечена известная страница блокировки",
    "why.mitm": ", замечен сертификат, выданный не сайту (перехват)",
    "why.fingerprint": ", замечен известный признак цензуры",
    "why.networks": ", сразу в нескольких сетях",
    "how": "{mechanism}{layer}.",
    "layer": " (на этапе {layer})",
    "mech.nxdomain": "DNS отвечает, что сайта не существует",
    "mech.bogon": "DNS возвращает частный или недопустимый адрес",
    "mech.injected": "Подставляются поддельные ответы DNS",
    "mech.spoofed": "DNS возвращает неверный адрес",
    "mech.servfail": "Запрос DNS завершается ошибкой",
    "mech.no_answer": "DNS не возвращает адреса",
    "mech.reset": "Соединения обрываются (сброс)",
    "mech.refused": "В соединении отказано",
    "mech.timeout": "Соединения зависают до истечения времени ожидания",
    "mech.eof": "Соединения закрываются раньше времени",
    "mech.mitm": "Предъявляется сертификат, выданный не сайту (перехват)",
    "mech.blockpage": "Вместо сайта показывается страница блокировки",
    "mech.diff": "Возвращается другая страница, чем из-за рубежа",
    "mech.sni_throttle": "Замедляется трафик по имени сайта",
    "mech.ip_throttle": "Замедляется трафик по адресу сайта",
    "mech.other": "Замеченный сбой: {value}",
    "shutdown.silent": "Зонды в этих сетях одновременно перестали достигать чего-либо за "
                       "пределами страны.",
    "h.seen": "Что видели зонды",
    "seen.none": "Для этого события пока нет сохранённых измерений.",
    "seen.none_shutdown": "Во время отключения зонды ничего не могут отправить: "
                          "доказательство — их молчание, замеренное извне.",
    "seen.intro": "Примеры измерений во время события и то, что для того же сайта увидел "
                  "наш сервер за пределами страны (контроль):",
    "th.time": "Время (UTC)", "th.site": "Сайт", "th.result": "Результат",
    "th.control": "Из-за рубежа", "th.measurement": "Измерение",
    "control.ok": "открылся", "control.failed": "тоже сбой", "control.none": "не измерено",
    "verdict.ok": "доступен", "verdict.blocked": "заблокирован",
    "verdict.throttled": "замедлен", "verdict.down": "недоступен везде",
    "verdict.inconclusive": "неясно",
    "open_json": "полные данные (JSON)",
    "cat.NEWS": "СМИ", "cat.HUMR": "права человека", "cat.POLR": "политическая критика",
    "cat.ANON": "обход блокировок", "cat.COMT": "средства связи",
    "cat.GRP": "социальные сети", "cat.MMED": "видео и медиа",
    "cat.CTRL": "контрольный сайт", "cat.HOST": "хостинг и блоги", "cat.GOVT": "госорганы",
    "cat.LGBT": "ЛГБТК+", "cat.REL": "религия",
    "site.title": "Kuzot: отключения, блокировки и замедление интернета",
    "site.about": "{countries}. Обновлено {time} UTC. Страница обновляется каждые {minutes} "
                  "мин.",
    "h.now": "Сейчас", "now.count.one": "{n} открытое событие",
    "now.count.few": "{n} открытых события", "now.count.many": "{n} открытых событий",
    "now.none": "Открытых событий нет. Зонды продолжают измерения.",
    "h.countries": "По странам", "h.networks": "По сетям",
    "h.timeline": "Последние 7 дней по часам", "h.ended": "Завершились за последние 7 дней",
    "h.monitor": "Когда Kuzot не мог наблюдать",
    "h.latest": "Последний результат по сайту и сети",
    "h.targets": "Сайты и сервисы", "h.subscribe": "Подписка",
    "th.country": "Страна", "th.status": "Состояние", "th.networks": "Сетей",
    "th.reachable": "Доступно", "th.blocked": "Заблокировано", "th.throttled": "Замедлено",
    "th.network": "Сеть", "th.last": "Последнее измерение (UTC)", "th.verdict": "Результат",
    "status.none": "Нет открытых событий", "status.noprobes": "Здесь нет зондов",
    "country.noprobes": "В стране ({country}) пока нет зондов: мы не видим, что там "
                        "происходит.",
    "networks.none": "Сети ещё не измерялись.", "latest.none": "Измерений ещё нет.",
    "timeline.legend": "Красный: отключение интернета. Оранжевый: блокировка. Жёлтый: "
                       "замедление. Серый: нет событий. Каждый час показывает самое серьёзное "
                       "событие.",
    "timeline.none": "За последние 7 дней событий не было.",
    "h.outside": "Видимость из-за рубежа по часам",
    "outside.chart.label": "Доля блоков адресов, отвечающих из-за рубежа, по сетям, "
                           "последние 7 дней",
    "outside.chart.cell": "отвечают {share}% блоков адресов",
    "outside.chart.legend": "Высота столбика: доля блоков адресов сети, отвечающих на наши "
                            "проверки из-за рубежа (полный: все). Серый: в этот час не "
                            "проверяли. Рядом с событиями зондов выше: когда падают оба, "
                            "два сигнала согласны.",
    "timeline.label": "События по часам ({where}), последние 7 дней",
    "details": "Подробности и доказательства", "all_events": "Все события",
    "subscribe.all": "Все события (лента Atom)", "subscribe.country": "{country} (лента Atom)",
    "footer.data": "Открытые данные", "footer.tiers":
        "Насколько точно: «предположительно» — видит один зонд; «вероятно» — одновременно "
        "видят несколько независимых зондов; «подтверждено» — вероятно, и при этом замечена "
        "известная страница блокировки, поддельный сертификат или сразу несколько сетей.",
    "footer.times": "Время местное, рядом указано UTC.",
    "footer.language": "Язык",
    "outage.collector_down": "Сервер сбора данных не работал.",
    "outage.control_unreachable": "Контрольный сервер не отвечал зондам.",
    "outage.other": "Мониторинг не мог наблюдать.",
    "outage.note": "Это не отключение интернета: сбои, измеренные в это время, не являются "
                   "доказательством.",
    "notfound": "Такого события нет (возможно, оно закончилось больше недели назад).",
    "feed.title": "Kuzot: события", "feed.country": "Kuzot: события ({country})",
    "alert.opened": "{title} ({tier})",
    "alert.escalated": "{title}: теперь {tier} (было: {previous})",
    "alert.closed": "{title}: завершено",
    "alert.digest": "Изменилось событий: {n}.",
    "alert.link": "Подробности: {link}",
}

# Kyrgyz: the page's fixed text. Draft by the maintainers, not yet reviewed by a native speaker.
KY: dict[str, str] = {
    "kind.shutdown": "Интернеттин өчүрүлүшү", "kind.block": "Бөгөттөө",
    "kind.throttling": "Жайлатуу", "kind.monitor_outage": "Мониторингдин үзгүлтүгү",
    "kind.monitor_blocked": "Мониторингдин бөгөттөлүшү",
    "tier.suspected": "шектүү", "tier.likely": "ыктымал", "tier.confirmed": "тастыкталган",
    "country.KG": "Кыргызстан", "country.KZ": "Казакстан", "country.ZZ": "бардык өлкөлөр",
    "title": "{country}: {kind}",
    "label.what": "Эмне", "label.where": "Кайда", "label.since": "Качантан бери",
    "label.when": "Качан", "label.sure": "Канчалык так", "label.how": "Кантип",
    "site.title": "Kuzot: интернеттин өчүрүлүшү, бөгөттөлүшү жана жайлатылышы",
    "site.about": "{countries}. Жаңыланды: {time} UTC. Барак ар {minutes} мүнөттө жаңыланат.",
    "h.now": "Азыр", "now.count.one": "Ачык окуялар: {n}", "now.count.many": "Ачык окуялар: {n}",
    "now.none": "Ачык окуялар жок. Зонддор өлчөөнү улантууда.",
    "h.countries": "Өлкөлөр боюнча", "h.networks": "Тармактар боюнча",
    "h.timeline": "Акыркы 7 күн, саат боюнча", "h.ended": "Акыркы 7 күндө аяктагандар",
    "h.monitor": "Kuzot байкай албаган убакыт",
    "h.latest": "Сайт жана тармак боюнча акыркы жыйынтык",
    "h.targets": "Сайттар жана кызматтар", "h.subscribe": "Жазылуу",
    "h.seen": "Зонддор эмнени көрдү",
    "th.country": "Өлкө", "th.status": "Абалы", "th.networks": "Тармактар",
    "th.reachable": "Жеткиликтүү", "th.blocked": "Бөгөттөлгөн", "th.throttled": "Жайлатылган",
    "th.network": "Тармак", "th.last": "Акыркы өлчөө (UTC)", "th.verdict": "Жыйынтык",
    "th.time": "Убакыт (UTC)", "th.site": "Сайт", "th.result": "Жыйынтык",
    "th.control": "Чет өлкөдөн", "th.measurement": "Өлчөө",
    "status.none": "Ачык окуя жок", "status.noprobes": "Бул жерде зонд жок",
    "networks.none": "Тармактар азырынча өлчөнгөн жок.", "latest.none": "Өлчөөлөр азырынча жок.",
    "timeline.none": "Акыркы 7 күндө окуялар болгон жок.",
    "timeline.legend": "Кызыл: интернеттин өчүрүлүшү. Кызгылт сары: бөгөттөө. Сары: "
                       "жайлатуу. Боз: окуя жок. Ар бир саат эң олуттуу окуяны көрсөтөт.",
    "details": "Толук маалымат жана далилдер", "all_events": "Бардык окуялар",
    "subscribe.all": "Бардык окуялар (Atom тасмасы)",
    "subscribe.country": "{country} (Atom тасмасы)",
    "footer.data": "Ачык маалыматтар", "footer.times": "Убакыт жергиликтүү, жанында UTC.",
    "footer.language": "Тил",
}

# Kazakh: the page's fixed text. Draft by the maintainers, not yet reviewed by a native speaker.
KK: dict[str, str] = {
    "kind.shutdown": "Интернетті өшіру", "kind.block": "Бұғаттау",
    "kind.throttling": "Баяулату", "kind.monitor_outage": "Мониторинг үзілісі",
    "kind.monitor_blocked": "Мониторингті бұғаттау",
    "tier.suspected": "күдікті", "tier.likely": "ықтимал", "tier.confirmed": "расталған",
    "country.KG": "Қырғызстан", "country.KZ": "Қазақстан", "country.ZZ": "барлық елдер",
    "title": "{country}: {kind}",
    "label.what": "Не", "label.where": "Қайда", "label.since": "Қашаннан бері",
    "label.when": "Қашан", "label.sure": "Қаншалықты нақты", "label.how": "Қалай",
    "site.title": "Kuzot: интернетті өшіру, бұғаттау және баяулату",
    "site.about": "{countries}. Жаңартылды: {time} UTC. Бет әр {minutes} минут сайын жаңарады.",
    "h.now": "Қазір", "now.count.one": "Ашық оқиғалар: {n}", "now.count.many": "Ашық оқиғалар: {n}",
    "now.none": "Ашық оқиғалар жоқ. Зондтар өлшеуді жалғастыруда.",
    "h.countries": "Елдер бойынша", "h.networks": "Желілер бойынша",
    "h.timeline": "Соңғы 7 күн, сағат бойынша", "h.ended": "Соңғы 7 күнде аяқталғандар",
    "h.monitor": "Kuzot бақылай алмаған уақыт", "h.latest": "Сайт пен желі бойынша соңғы нәтиже",
    "h.targets": "Сайттар мен қызметтер", "h.subscribe": "Жазылу",
    "h.seen": "Зондтар не көрді",
    "th.country": "Ел", "th.status": "Күйі", "th.networks": "Желілер",
    "th.reachable": "Қолжетімді", "th.blocked": "Бұғатталған", "th.throttled": "Баяулатылған",
    "th.network": "Желі", "th.last": "Соңғы өлшеу (UTC)", "th.verdict": "Нәтиже",
    "th.time": "Уақыт (UTC)", "th.site": "Сайт", "th.result": "Нәтиже",
    "th.control": "Шетелден", "th.measurement": "Өлшеу",
    "status.none": "Ашық оқиға жоқ", "status.noprobes": "Мұнда зонд жоқ",
    "networks.none": "Желілер әлі өлшенген жоқ.", "latest.none": "Өлшеулер әлі жоқ.",
    "timeline.none": "Соңғы 7 күнде оқиғалар болған жоқ.",
    "timeline.legend": "Қызыл: интернетті өшіру. Қызғылт сары: бұғаттау. Сары: баяулату. "
                       "Сұр: оқиға жоқ. Әр сағат ең маңызды оқиғаны көрсетеді.",
    "details": "Толық ақпарат және дәлелдер", "all_events": "Барлық оқиғалар",
    "subscribe.all": "Барлық оқиғалар (Atom арнасы)",
    "subscribe.country": "{country} (Atom арнасы)",
    "footer.data": "Ашық деректер", "footer.times": "Уақыт жергілікті, қасында UTC.",
    "footer.language": "Тіл",
}

CATALOG: dict[Language, dict[str, str]] = {"en": EN, "ru": RU, "ky": KY, "kk": KK}
# Plural keys exist as <key>.one/.many (English) and .one/.few/.many (Russian).
_PLURAL_SUFFIXES = (".one", ".few", ".many")


def text(language: Language, key: str, **values: object) -> str:
    """The text of ``key`` in ``language`` (or its fallback), formatted with ``values``."""
    for lang in FALLBACK[language]:
        found = CATALOG[lang].get(key)
        if found is not None:
            return found.format(**values) if values else found
    raise KeyError(key)


def plural_form(language: Language, n: int) -> str:
    """``one``, ``few`` or ``many`` (CLDR's categories for Russian; English has one/many)."""
    if language == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    return "one" if n == 1 else "many"


def plural(language: Language, key: str, n: int) -> str:
    """``key.one``/``key.few``/``key.many`` for ``n``, formatted with ``n``."""
    form = plural_form(language, n)
    for lang in FALLBACK[language]:
        table = CATALOG[lang]
        # A language without a "few" form uses "many" there.
        lang_form = plural_form(lang, n) if lang != language else form
        for candidate in (lang_form, "many"):
            found = table.get(f"{key}.{candidate}")
            if found is not None:
                return found.format(n=n)
    raise KeyError(key)


def translated(language: Language) -> frozenset[str]:
    """The keys ``language`` has its own text for (the rest fall back)."""
    return frozenset(CATALOG[language])


_RANGE = re.compile(r"\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*")


def negotiate(accept_language: str | None) -> Language:
    """The best of our languages for an ``Accept-Language`` header (RFC 9110 §12.5.4);
    English when nothing matches or the header is malformed."""
    best: tuple[float, int, Language] | None = None
    for index, part in enumerate((accept_language or "")[:1000].split(",")[:32]):
        match = _RANGE.fullmatch(part)
        if not match:
            continue
        tag, q = match.group(1).lower(), match.group(2)
        try:
            weight = 1.0 if q is None else float(q)
        except ValueError:
            continue
        if not 0 < weight <= 1:
            continue
        primary = tag.split("-")[0]
        if primary not in LANGUAGES:
            continue
        candidate = (weight, -index, cast(Language, primary))
        if best is None or candidate > best:
            best = candidate
    return DEFAULT if best is None else best[2]


def parse_language(value: str) -> Language:
    """A ``lang`` query value; ValueError naming the choices otherwise."""
    for language in LANGUAGES:
        if value == language:
            return language
    raise ValueError(f"lang: one of {', '.join(LANGUAGES)}")
