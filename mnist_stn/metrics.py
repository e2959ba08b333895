"""What every classifier's graph ends in: softmax, predictions, accuracy and the loss.

Both wings' ``build_graph`` (``model.py``, ``letters/model.py``) add these nodes, and
the training loop and ``checkpoints.Restored`` read them by these names.
"""
from mnist_stn.compat import tf


def metrics(logits, labels):
    """Softmax, predictions, the number correct, accuracy and the mean cross entropy."""
    predictions = tf.argmax(logits, 1)
    correct = tf.cast(tf.equal(predictions, labels), tf.float32)
    return {
        "probabilities": tf.nn.softmax(logits),
        "predictions": predictions,
        "num_correct": tf.cast(tf.reduce_sum(correct), tf.int32),
        "accuracy": tf.reduce_mean(correct),
        "loss": tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits)),
    }
