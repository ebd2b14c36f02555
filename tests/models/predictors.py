"""Stand-in few-shot models whose query accuracy is known from the episode alone."""

import keras
import tensorflow as tf


class ConstantPredictor(keras.Model):
    """Always predicts class 0; records the support lengths it was given."""

    def __init__(self, n_way):
        super().__init__()
        self.n_way = n_way
        self.support_lengths = set()

    def call(self, batch, training=None):
        self.support_lengths.add(batch["support_images"].shape[1])
        queries = tf.shape(batch["query_images"])[:2]
        return tf.one_hot(tf.zeros(queries, tf.int32), self.n_way)


class Oracle(ConstantPredictor):
    """Predicts every query's true label."""

    def call(self, batch, training=None):
        return tf.one_hot(batch["query_labels"], self.n_way)


class KShotPredictor(ConstantPredictor):
    """Right on queries whose label is below K (support length / n_way), wrong on the others.

    Its accuracy is about K / n_way, so results reported under the wrong K_test differ.
    """

    def call(self, batch, training=None):
        k_shot = batch["support_images"].shape[1] // self.n_way
        labels = batch["query_labels"]
        predicted = tf.where(labels < k_shot, labels, (labels + 1) % self.n_way)
        return tf.one_hot(predicted, self.n_way)
