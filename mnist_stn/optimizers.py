"""The optimizers a run may name: TF1's Adam and SGD, and AMSGrad, which TF1 lacks.

The second tutorial compares Adam, AMSGrad and plain SGD (lr 0.02) on its captcha
letters. Keras' ``Adam(amsgrad=True)`` cannot drive a TF1 graph under Keras 3, so
AMSGrad is written here as a ``tf.train.Optimizer``, beside the TF1 ones.
"""
from mnist_stn.compat import tf

OPTIMIZERS = ("adam", "amsgrad", "sgd")


class AMSGradOptimizer(tf.train.AdamOptimizer):
    """Adam whose step divides by the largest second moment seen so far (AMSGrad).

    Reddi, Kale and Kumar, "On the Convergence of Adam and Beyond" (ICLR 2018), in the
    form Keras uses: with m and v as in Adam and vhat = max(vhat, v),
    ``var -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(vhat) + epsilon)``.
    Adam's own slots, step counters and defaults are reused; only the update differs.
    """

    def _create_slots(self, var_list):
        super()._create_slots(var_list)
        for var in var_list:
            self._zeros_slot(var, "vhat", self._name)

    def _apply_dense(self, grad, var):
        beta1_power, beta2_power = self._get_beta_accumulators()   # beta^t at step t
        dtype = var.dtype.base_dtype
        beta1, beta2 = tf.cast(self._beta1_t, dtype), tf.cast(self._beta2_t, dtype)
        step_size = (tf.cast(self._lr_t, dtype) * tf.sqrt(1 - tf.cast(beta2_power, dtype))
                     / (1 - tf.cast(beta1_power, dtype)))
        m, v, vhat = (self.get_slot(var, name) for name in ("m", "v", "vhat"))
        m_t = tf.assign(m, beta1 * m + (1 - beta1) * grad)
        v_t = tf.assign(v, beta2 * v + (1 - beta2) * tf.square(grad))
        vhat_t = tf.assign(vhat, tf.maximum(vhat, v_t))
        update = tf.assign_sub(
            var, step_size * m_t / (tf.sqrt(vhat_t) + tf.cast(self._epsilon_t, dtype)))
        return tf.group(update, m_t, v_t, vhat_t)

    def _resource_apply_dense(self, grad, var):
        return self._apply_dense(grad, var)

    def _apply_sparse(self, grad, var):
        raise NotImplementedError("AMSGrad here updates dense gradients only")

    def _resource_apply_sparse(self, grad, var, indices):
        raise NotImplementedError("AMSGrad here updates dense gradients only")


def make_optimizer(name, learning_rate):
    """adam / amsgrad (TF1's Adam defaults) or sgd (plain gradient descent)."""
    if name == "adam":
        return tf.train.AdamOptimizer(learning_rate)
    if name == "amsgrad":
        return AMSGradOptimizer(learning_rate)
    if name == "sgd":
        return tf.train.GradientDescentOptimizer(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")
