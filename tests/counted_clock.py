"""A clock that reads the work done instead of the time, for issue 33's guards: a
training step costs 1, a trace of the step 10, and the process's first trace 100
more (a fresh process's first training takes its memory from the system:
benchmarks/results/arm_probe_cpu/fresh/). Machine noise cannot move it."""

import time

import keras


def new_work():
    """The work done so far, and the clock that reads it."""
    return {"steps": 0, "traces": 0, "clock": 0.0}


def counting_traces(work, train_step):
    """`train_step`, charging each trace of it to `work`."""

    def counted_train_step(self, data):
        # Python in a traced step runs once per trace, not once per step.
        work["clock"] += 110.0 if work["traces"] == 0 else 10.0
        work["traces"] += 1
        return train_step(self, data)

    return counted_train_step


def count_step(work):
    work["steps"] += 1
    work["clock"] += 1.0


def install(work):
    """Charges to `work`, in this process, every trace of `keras.Model.train_step`
    and every step the example's `TimeHistory` sees; `time.time` reads its clock."""

    def counted_batch_end(self, batch, logs=None):
        if type(self).__name__ == "TimeHistory":  # The example's own timer.
            count_step(work)

    keras.Model.train_step = counting_traces(work, keras.Model.train_step)
    keras.callbacks.Callback.on_train_batch_end = counted_batch_end
    time.time = lambda: work["clock"]
