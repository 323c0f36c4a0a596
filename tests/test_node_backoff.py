from minieks.node import backoff
from minieks.node.backoff import RestartBackoff


def test_the_wait_doubles_from_10s_to_a_5_minute_cap():
    b = RestartBackoff()
    b.started(0)
    waits, now = [], 0.0
    for _ in range(7):
        now += 1
        waits.append(b.exited(now) - now)
        assert not b.restart(now + waits[-1] - 0.5)
        now += waits[-1]
        assert b.restart(now)
    assert waits == [10, 20, 40, 80, 160, 300, 300]
    assert b.restarts == 7


def test_ten_minutes_of_running_forget_the_back_off():
    b = RestartBackoff()
    b.started(0)
    b.exited(1)
    b.restart(11)
    b.exited(12)                       # 20 s now
    assert b.wait == 20
    b.restart(40)
    assert b.exited(40 + 600) - 640 == 10


def test_go_duration_and_the_kubelets_message():
    assert [backoff.go_duration(s) for s in (10, 80, 300, 3600)] == ["10s", "1m20s", "5m0s", "1h0m0s"]
    assert backoff.message(40, "nginx", "web-1", "default", "u-1") == \
        "back-off 40s restarting failed container=nginx pod=web-1_default(u-1)"
