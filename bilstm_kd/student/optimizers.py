"""AdaDelta that updates only the embedding rows a batch uses, with the result of Keras' dense update.

The student's gradient for its trainable word vectors is a `tf.IndexedSlices`: one row per word in the
batch. Keras' AdaDelta squares it into a dense matrix, so every step rewrites the whole
`[vocabulary, dim]` matrix and both of its accumulators. With 52,518 words of 300 dimensions that is about
half the time of a training step on a CPU.

Nothing is lost by skipping the other rows. A row the batch does not use has a zero gradient, and the
dense update then leaves the row where it is and only multiplies its two accumulators by rho. So
`SparseAdadelta` remembers, for each row, the step at which it last updated it, and when the row is next
used, first applies the decay it missed (rho to the power of the skipped steps) and then the usual update.
The weights after every step are those of `keras.optimizers.Adadelta` up to float rounding; only the
accumulators of unused rows lag behind until the row is used again. (TF1's sparse AdaDelta, by contrast,
skipped that decay, which changes the step sizes of rare words.)
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="bilstm_kd")
class SparseAdadelta(keras.optimizers.Adadelta):
    """`keras.optimizers.Adadelta` at the cost of the embedding rows a batch uses (TensorFlow backend).

    Dense gradients take Keras' own update. For a `tf.IndexedSlices` gradient, repeated rows are summed (as
    the dense update sums them), the rows' accumulators catch up on the decay of the steps they were not
    used in, and only those rows of the variable and its accumulators are written.

    >>> optimizer = SparseAdadelta(learning_rate=1.0, rho=0.95, epsilon=1e-6)
    """

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # Steps completed when each row was last updated; a row never used has zero accumulators, which
        # any decay leaves at zero, so 0 is right for it too.
        self._row_steps = [
            self.add_variable(
                shape=(variable.shape[0] if len(variable.shape) else 1,),
                initializer="zeros",
                dtype="int64",
                name=f"{variable.path.replace('/', '_')}_row_steps",
            )
            for variable in var_list
        ]

    def load_own_variables(self, store):
        if not self.built or len(store.keys()) != len(self.variables) - len(self._row_steps):
            return super().load_own_variables(store)
        # State saved by `keras.optimizers.Adadelta` (a run begun before this optimizer): the same variables in
        # the same order, less the row steps; its dense update kept every row current to the saved step.
        for position, variable in enumerate(self.variables[: len(store.keys())]):
            variable.assign(store[str(position)])
        for row_steps in self._row_steps:
            row_steps.assign(tf.fill(row_steps.shape, tf.cast(self.iterations, "int64")))

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        accumulated_grad = self._accumulated_grads[index]
        accumulated_delta = self._accumulated_delta_vars[index]
        row_steps = self._row_steps[index]

        rows, position = tf.unique(gradient.indices)
        grad = tf.math.unsorted_segment_sum(gradient.values, position, tf.size(rows))
        grad = tf.cast(grad, variable.dtype)
        lr = tf.cast(learning_rate, variable.dtype)
        rho = tf.cast(self.rho, variable.dtype)

        skipped = self.iterations - tf.gather(row_steps, rows)
        decay = tf.pow(rho, tf.cast(skipped, variable.dtype))
        decay = tf.reshape(decay, [-1] + [1] * (len(variable.shape) - 1))

        def rms(x):
            return tf.sqrt(x + self.epsilon)

        new_grad = rho * decay * tf.gather(accumulated_grad, rows) + (1 - rho) * tf.square(grad)
        old_delta = decay * tf.gather(accumulated_delta, rows)
        delta = -rms(old_delta) * grad / rms(new_grad)
        new_delta = rho * old_delta + (1 - rho) * tf.square(delta)

        shape = tf.shape(variable, out_type=rows.dtype)
        self.assign(accumulated_grad, tf.IndexedSlices(new_grad, rows, shape))
        self.assign(accumulated_delta, tf.IndexedSlices(new_delta, rows, shape))
        self.assign_add(variable, tf.IndexedSlices(lr * delta, rows, shape))
        done = tf.fill(tf.shape(rows), self.iterations + 1)
        self.assign(row_steps, tf.IndexedSlices(done, rows, tf.shape(row_steps, out_type=rows.dtype)))
