"""Sessions: stable within a UTC day for one visitor, unlinkable across days."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

from ferrite.plugins.salts import SaltStore
from ferrite.plugins.session import Sessions, session_id
from ferrite.testing import IPHONE_SAFARI, make_hit

DAY = date(2026, 3, 10)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


class Clock:
    def __init__(self, today: date) -> None:
        self.today = today

    def __call__(self) -> date:
        return self.today


def sessions(path, clock) -> Sessions:
    s = Sessions(str(path))
    s.salts.clock = clock
    s.ferrite_startup()
    return s


def test_same_visitor_same_day_same_session(tmp_path):
    s = sessions(tmp_path / "s.db", Clock(DAY))
    a = s.ferrite_session(hit=make_hit(ts=at(DAY, 1)), client_ip="203.0.113.7")
    b = s.ferrite_session(hit=make_hit("https://example.com/other", ts=at(DAY, 23)),
                          client_ip="203.0.113.7")
    assert a == b and len(a) == 32 and int(a, 16) >= 0


def test_ip_user_agent_and_site_each_change_the_session(tmp_path):
    s = sessions(tmp_path / "s.db", Clock(DAY))
    base = s.ferrite_session(hit=make_hit(ts=at(DAY)), client_ip="203.0.113.7")
    others = {
        s.ferrite_session(hit=make_hit(ts=at(DAY)), client_ip="203.0.113.8"),
        s.ferrite_session(hit=make_hit(ts=at(DAY), user_agent=IPHONE_SAFARI),
                          client_ip="203.0.113.7"),
        s.ferrite_session(hit=make_hit("https://other.org/", ts=at(DAY)),
                          client_ip="203.0.113.7"),
    }
    assert base not in others and len(others) == 3


def test_next_day_gives_a_new_session(tmp_path):
    clock = Clock(DAY)
    s = sessions(tmp_path / "s.db", clock)
    today = s.ferrite_session(hit=make_hit(ts=at(DAY)), client_ip="203.0.113.7")
    clock.today = DAY + timedelta(days=1)
    tomorrow = s.ferrite_session(hit=make_hit(ts=at(clock.today)), client_ip="203.0.113.7")
    assert today != tomorrow


def test_hit_from_before_midnight_arriving_after_keeps_its_session(tmp_path):
    clock = Clock(DAY)
    s = sessions(tmp_path / "s.db", clock)
    before = s.ferrite_session(hit=make_hit(ts=at(DAY, 23)), client_ip="203.0.113.7")
    clock.today = DAY + timedelta(days=1)
    late = s.ferrite_session(hit=make_hit(ts=at(DAY, 23)), client_ip="203.0.113.7")
    assert before == late


def test_restart_keeps_the_days_sessions(tmp_path):
    path = tmp_path / "s.db"
    first = sessions(path, Clock(DAY))
    a = first.ferrite_session(hit=make_hit(ts=at(DAY)), client_ip="203.0.113.7")
    first.ferrite_shutdown()
    second = sessions(path, Clock(DAY))
    assert second.ferrite_session(hit=make_hit(ts=at(DAY)), client_ip="203.0.113.7") == a


def test_two_stores_on_one_file_agree(tmp_path):
    """What two worker processes see: the first salt written wins for both."""
    path = tmp_path / "s.db"
    one, two = sessions(path, Clock(DAY)), sessions(path, Clock(DAY))
    hit = make_hit(ts=at(DAY))
    assert one.ferrite_session(hit=hit, client_ip="1.2.3.4") == \
        two.ferrite_session(hit=hit, client_ip="1.2.3.4")


def test_only_today_and_yesterday_survive_rotation_and_old_bytes_are_gone(tmp_path):
    path = tmp_path / "s.db"
    clock = Clock(DAY)
    store = SaltStore(str(path), clock)
    store.open()
    old_salt = store.salt_for(DAY)
    for step in (1, 2):
        clock.today = DAY + timedelta(days=step)
        store.salt_for(clock.today)
    assert store.stored_days() == [DAY + timedelta(days=1), DAY + timedelta(days=2)]
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert old_salt not in raw  # secure_delete overwrote it; no copy lingers in the WAL


def test_rotation_happens_without_traffic(tmp_path):
    clock = Clock(DAY)
    store = SaltStore(str(tmp_path / "s.db"), clock)
    store.open()
    store.salt_for(DAY)
    clock.today = DAY + timedelta(days=2)
    store.rotate()  # what the midnight timer calls
    assert store.stored_days() == []


def test_past_days_get_ephemeral_salts_never_stored(tmp_path):
    path = tmp_path / "s.db"
    store = SaltStore(str(path), Clock(DAY))
    store.open()
    old = DAY - timedelta(days=30)
    salt = store.salt_for(old)
    assert salt == store.salt_for(old)  # stable within the run
    assert old not in store.stored_days()
    store.close()
    other = SaltStore(str(path), Clock(DAY))
    other.open()
    assert other.salt_for(old) != salt  # another import can never link to this one


def test_session_id_is_a_keyed_hash():
    a = session_id(b"k" * 32, "example.com", "203.0.113.7", "UA")
    assert a != session_id(b"j" * 32, "example.com", "203.0.113.7", "UA")
    assert "203.0.113.7" not in a


def test_salt_table_holds_raw_random_bytes(tmp_path):
    store = SaltStore(str(tmp_path / "s.db"), Clock(DAY))
    store.open()
    store.salt_for(DAY)
    rows = sqlite3.connect(tmp_path / "s.db").execute("SELECT day, length(salt) "
                                                      "FROM ferrite_salts").fetchall()
    assert rows == [(DAY.isoformat(), 32)]
