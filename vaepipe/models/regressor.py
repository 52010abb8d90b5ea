"""The seed's "Model 2": a dense network from a distance matrix straight to particle coordinates.

The learned alternative to the Gram (classical MDS) reconstruction, trained on original matrices; the
reconstruction stage compares the two on decoded matrices.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
import numpy as np

__all__ = ["train_coordinate_regressor"]


def train_coordinate_regressor(train_matrices: np.ndarray, train_positions: np.ndarray,
                               val_matrices: np.ndarray, val_positions: np.ndarray, params: Mapping[str, Any],
                               box_length: float, seed: int):
    """The seed's "Model 2": a dense network from a normalised distance matrix to the particles' coordinates in
    the box frame (divided by L), trained with the mean squared error on original matrices. Returns the model."""
    keras.utils.set_random_seed(seed)
    n_outputs = int(np.prod(train_positions.shape[1:]))
    inputs = keras.Input(shape=train_matrices.shape[1:], name="distances")
    x = keras.layers.Flatten()(inputs)
    for units in params["hidden_units"]:
        x = keras.layers.Dense(int(units), activation="relu")(x)
    outputs = keras.layers.Reshape(train_positions.shape[1:])(keras.layers.Dense(n_outputs)(x))
    model = keras.Model(inputs, outputs, name="distance_to_coordinates")
    model.compile(optimizer=keras.optimizers.Adam(float(params["learning_rate"])), loss="mse")
    stop = keras.callbacks.EarlyStopping(patience=int(params["patience"]), restore_best_weights=True)
    model.fit(train_matrices, train_positions / box_length, validation_data=(val_matrices, val_positions / box_length),
              epochs=int(params["epochs"]), batch_size=int(params["batch_size"]), callbacks=[stop], verbose=0,
              shuffle=True)
    return model
