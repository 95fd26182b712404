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
