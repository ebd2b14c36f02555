"""The three terms of the bootstrapped few-shot loss (Irie & Schmidhuber 2023, Eq. 5)."""

import keras
import tensorflow as tf

DISTILLATIONS = ("kl", "ce")


def in_loss_precision(logits):
    """`logits` cast to float32, or kept where they are wider (float64).

    Under a mixed-precision policy the model computes in float16 or bfloat16; its losses, as
    Keras's own, are computed in float32, where a small distillation term does not round to 0.
    """
    return tf.cast(logits, keras.backend.result_type(logits.dtype, "float32"))


def cross_entropy(labels, logits):
    """Mean sparse cross-entropy, in loss precision: labels `[...]` int, logits `[..., n_way]`."""
    logits = in_loss_precision(logits)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def distillation(teacher_logits, student_logits, distill="kl", temperature=1.0):
    """Mean over queries of D(sg(p_teacher), p_student) at a temperature, in loss precision.

    `"kl"`: KL(p_teacher || p_student), as the authors' code; `"ce"`: the soft-target
    cross-entropy -Σ p_teacher log p_student of the paper's Eq. 5 (KL plus the teacher's entropy,
    which carries no gradient). Gradients reach the student only: the teacher distribution is
    a stop-gradient target. Both are multiplied by `temperature**2` so that the gradient scale
    does not shrink as the temperature grows (identity at the default temperature 1).
    """
    teacher_log_probs = tf.stop_gradient(tf.nn.log_softmax(in_loss_precision(teacher_logits) / temperature))
    student_log_probs = tf.nn.log_softmax(in_loss_precision(student_logits) / temperature)
    teacher_probs = tf.exp(teacher_log_probs)
    per_query = -tf.reduce_sum(teacher_probs * student_log_probs, axis=-1)
    if distill == "kl":
        per_query += tf.reduce_sum(teacher_probs * teacher_log_probs, axis=-1)
    return tf.reduce_mean(per_query) * temperature**2


def accuracy(labels, logits):
    """Fraction of queries whose arg-max logit is the label."""
    predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
    return tf.reduce_mean(tf.cast(tf.equal(predictions, labels), tf.float32))
