"""Referrer hosts by kind of source. A host matches itself and its subdomains;
google.<any country domain> is recognised by rule in referrer.py."""

SEARCH = frozenset({
    "bing.com", "duckduckgo.com", "yahoo.com", "search.yahoo.com", "yahoo.co.jp",
    "baidu.com", "yandex.ru", "yandex.com", "ya.ru", "ecosia.org", "qwant.com",
    "startpage.com", "search.brave.com", "kagi.com", "naver.com", "seznam.cz", "sogou.com",
    "so.com", "ask.com", "aol.com", "search.aol.com", "mojeek.com", "yep.com", "you.com",
    "perplexity.ai", "metager.org", "swisscows.com", "presearch.com", "daum.net",
    "search.lilo.org", "petalsearch.com", "coccoc.com", "neeva.com", "dogpile.com",
    "chatgpt.com", "copilot.microsoft.com", "gemini.google.com",
})

SOCIAL = frozenset({
    "facebook.com", "m.facebook.com", "l.facebook.com", "lm.facebook.com", "fb.me",
    "t.co", "twitter.com", "x.com", "instagram.com", "l.instagram.com", "linkedin.com",
    "lnkd.in", "reddit.com", "old.reddit.com", "out.reddit.com", "news.ycombinator.com",
    "pinterest.com", "youtube.com", "m.youtube.com", "youtu.be", "tiktok.com",
    "threads.net", "bsky.app", "mastodon.social", "mstdn.social", "fosstodon.org",
    "hachyderm.io", "lobste.rs", "tumblr.com", "vk.com", "ok.ru", "weibo.com",
    "discord.com", "discordapp.com", "telegram.org", "t.me", "web.telegram.org",
    "whatsapp.com", "web.whatsapp.com", "slack.com", "quora.com", "medium.com",
    "snapchat.com", "xing.com", "habr.com", "dev.to", "stackoverflow.com",
    "producthunt.com", "flipboard.com", "line.me", "messenger.com",
})

EMAIL = frozenset({
    "mail.google.com", "outlook.live.com", "outlook.office.com", "outlook.office365.com",
    "mail.yahoo.com", "mail.proton.me", "mail.protonmail.com", "mail.aol.com",
    "mail.yandex.ru", "e.mail.ru", "mail.zoho.com", "app.fastmail.com", "mail.tutanota.com",
    "app.tuta.com", "webmail.gmx.net", "navigator.gmx.net", "web.de", "mail.qq.com",
    "icloud.com", "hey.com",
})

#: What the stats call a well-known referring host (Plausible's names), so "Google" is one
#: row, not one per country domain. Hosts are without "www."; google.* is a rule
#: (`source_name`).
NAMES: dict[str, str] = {
    **dict.fromkeys(("bing.com", "cn.bing.com"), "Bing"),
    "duckduckgo.com": "DuckDuckGo",
    **dict.fromkeys(("yahoo.com", "search.yahoo.com", "yahoo.co.jp"), "Yahoo!"),
    "baidu.com": "Baidu",
    **dict.fromkeys(("yandex.ru", "yandex.com", "ya.ru"), "Yandex"),
    "ecosia.org": "Ecosia", "qwant.com": "Qwant", "startpage.com": "Startpage",
    "search.brave.com": "Brave Search", "kagi.com": "Kagi", "naver.com": "Naver",
    "seznam.cz": "Seznam", "perplexity.ai": "Perplexity", "chatgpt.com": "ChatGPT",
    "copilot.microsoft.com": "Copilot", "gemini.google.com": "Gemini",
    **dict.fromkeys(("facebook.com", "m.facebook.com", "l.facebook.com", "lm.facebook.com",
                     "fb.me"), "Facebook"),
    **dict.fromkeys(("t.co", "twitter.com", "x.com"), "Twitter"),
    **dict.fromkeys(("instagram.com", "l.instagram.com"), "Instagram"),
    **dict.fromkeys(("linkedin.com", "lnkd.in"), "LinkedIn"),
    **dict.fromkeys(("reddit.com", "old.reddit.com", "out.reddit.com"), "Reddit"),
    "news.ycombinator.com": "Hacker News", "pinterest.com": "Pinterest",
    **dict.fromkeys(("youtube.com", "m.youtube.com", "youtu.be"), "YouTube"),
    "tiktok.com": "TikTok", "threads.net": "Threads", "bsky.app": "Bluesky",
    "lobste.rs": "Lobsters", "tumblr.com": "Tumblr", "vk.com": "VKontakte",
    **dict.fromkeys(("discord.com", "discordapp.com"), "Discord"),
    **dict.fromkeys(("t.me", "telegram.org", "web.telegram.org"), "Telegram"),
    **dict.fromkeys(("whatsapp.com", "web.whatsapp.com"), "WhatsApp"),
    "slack.com": "Slack", "quora.com": "Quora", "medium.com": "Medium",
    "stackoverflow.com": "Stack Overflow", "producthunt.com": "Product Hunt",
    "github.com": "GitHub", "flipboard.com": "Flipboard",
    "mail.google.com": "Gmail",
    **dict.fromkeys(("outlook.live.com", "outlook.office.com", "outlook.office365.com"),
                    "Outlook.com"),
    "mail.yahoo.com": "Yahoo! Mail",
    **dict.fromkeys(("mail.proton.me", "mail.protonmail.com"), "Proton Mail"),
}


def source_name(host: str) -> str:
    """The stats' name for a referring host without "www." (the host itself if unknown)."""
    if host in NAMES:
        return NAMES[host]
    labels = host.split(".")
    if "google" in labels[:-1]:
        return "Google"
    return host
