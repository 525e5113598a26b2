"""The loop's typed records: a saved state read back by any version, a window that carries named counters."""

from trainers.loop_state import LoopState, Window


def test_a_saved_state_reads_back_and_an_older_ones_counters_join_the_named_counters():
    st = LoopState(step=12, phase_bests={"0": "step-00000010"}, counters={"masked_utterances": 4})
    assert LoopState.from_dict(st.to_dict()) == st
    older = {"step": 7, "masked_utterances": 3, "speed_perturbed": 2, "a_key_of_a_newer_version": 1}
    back = LoopState.from_dict(older)
    assert back.step == 7 and back.counters == {"masked_utterances": 3, "speed_perturbed": 2}
    assert back.best is None and back.last_eval_step == -1  # what it lacked takes the default


def test_a_window_sums_its_fixed_values_then_the_named_counters_in_the_order_asked():
    w = Window(utts=3, bad=1, seen=4)
    w.count("speed_perturbed", 2)
    w.count("noise_added", 1)
    w.count("noise_added", 1)
    sums = w.sums(["masked_utterances", "noise_added", "speed_perturbed"])
    assert sums[len(Window.SUMMED):] == [0.0, 2.0, 2.0]
    assert dict(zip(Window.SUMMED, sums))["seen"] == 4.0


def test_updating_a_field_the_state_does_not_have_is_an_error():
    import pytest

    with pytest.raises(AttributeError, match="no field 'stpe'"):
        LoopState().update(stpe=3)
