"""What did the networks learn? Filters, feature maps, Grad-CAM and embeddings as pictures.

Each function returns a uint8 image (or writes a PNG) that a person can look at:

- :func:`filter_grid`: the first conv layer's kernels, one tile each.
- :func:`feature_maps`: a conv layer's activations for one input image, one tile per channel.
- :func:`grad_cam`: where a classifier looked for its decision (Selvaraju et al. 2017).
- :func:`embedding_figure`: a 2-D PCA (or t-SNE) of trunk features coloured by class, side by side
  for several trunks: which one separates the classes before any label is used?
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
from keras import ops

from gantransfer import backend
from gantransfer.data.transforms import GAN_RANGE
from gantransfer.errors import GantransferError
from gantransfer.images import make_grid, save_png


def _normalise(values: np.ndarray) -> np.ndarray:
    """Scales an array to uint8 [0, 255] over its own range (a flat array becomes mid-grey)."""
    values = np.asarray(values, "float32")
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return np.full(values.shape, 128, "uint8")
    return np.round((values - low) / (high - low) * 255).astype("uint8")


def conv_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """A model's ``Conv2D`` layers in order, looking inside nested models (a classifier's trunk).

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> [layer.name for layer in conv_layers(build_discriminator(32, 1, width=0.125))]
        ['block1_conv', 'block2_conv', 'block3_conv']
    """
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += conv_layers(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            found.append(layer)
    return found


def _find_layer(model: keras.Model, name: str) -> tuple[keras.Model, keras.layers.Layer]:
    """A layer by name, looking inside nested models; returns (its model, the layer)."""
    chain, layer = _chain_to(model, name)
    return chain[-1], layer


def _chain_to(model: keras.Model, name: str) -> tuple[list[keras.Model], keras.layers.Layer]:
    """The models from ``model`` down to the one that holds layer ``name`` (a classifier, its
    trunk, an ImageNet backbone inside the trunk), and the layer."""
    for layer in model.layers:
        if layer.name == name:
            return [model], layer
        if isinstance(layer, keras.Model):
            try:
                chain, found = _chain_to(layer, name)
            except GantransferError:
                continue
            return [model, *chain], found
    names = [layer.name for layer in conv_layers(model)]
    raise GantransferError(f"no layer {name!r} in model {model.name!r}; its conv layers are: "
                           f"{', '.join(names) or 'none'}")


def _call_in(outer: keras.Model, inner: keras.Model):
    """The node where ``outer``'s graph calls the nested model ``inner``."""
    for node in inner._inbound_nodes:
        try:
            keras.Model(outer.input, node.input_tensors[0])
        except ValueError:  # a call in another graph
            continue
        return node
    raise GantransferError(f"cannot follow {outer.name!r} into its nested model {inner.name!r}")


def _levels(model: keras.Model, chain: list[keras.Model], x):
    """The input of every model of ``chain`` for the input ``x`` of ``model`` (``chain[0]``): a
    nested model reads what its caller gives it (resized, preprocessed), not the pixels."""
    inputs = [x]
    for outer, inner in zip(chain, chain[1:]):
        feeding = keras.Model(outer.input, _call_in(outer, inner).input_tensors[0])
        inputs.append(feeding(inputs[-1], training=False))
    return inputs


def _rest_of(model: keras.Model, tensor) -> keras.Model | None:
    """``model``'s output as a function of its input and an inner ``tensor`` of its graph; None
    when the tensor is the output itself."""
    if tensor is model.output:
        return None
    return keras.Model([model.input, tensor], model.output)


def _activated(owner: keras.Model, conv: keras.layers.Layer) -> keras.layers.Layer:
    """The activation right after a conv layer (and its BatchNorm), as the network passes the
    conv's maps on; the conv itself when none follows."""
    after = owner.layers[owner.layers.index(conv) + 1:]
    for layer in after[:2]:
        if isinstance(layer, (keras.layers.LeakyReLU, keras.layers.ReLU, keras.layers.Activation)):
            return layer
    return conv


def activation_model(model: keras.Model, name: str) -> keras.Model:
    """A model from ``model``'s input to the output of its layer ``name``, wherever that layer is
    nested (inside a classifier's trunk, or an ImageNet backbone inside the trunk).

    Raises:
        GantransferError: No such layer, or it gives no image-shaped maps ``(H, W, C)``.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> activation_model(build_discriminator(32, 1, width=0.125), "block2_conv").output_shape
        (None, 8, 8, 16)
    """
    chain, target = _chain_to(model, name)
    if len(target.output.shape) != 4:
        names = [layer.name for layer in conv_layers(model)]
        raise GantransferError(f"layer {name!r} gives {tuple(target.output.shape)[1:]}, not maps "
                               f"to draw; pick a conv layer: {', '.join(names)}")
    x = keras.Input(model.input_shape[1:])
    inner = _levels(model, chain, x)[-1]
    return keras.Model(x, keras.Model(chain[-1].input, target.output)(inner, training=False))


def filter_grid(model: keras.Model, layer: str | None = None) -> np.ndarray:
    """The kernels of a conv layer (the first by default) as one tiled uint8 image.

    Each filter is scaled over its own range. Grey inputs give grey tiles, RGB inputs colour tiles;
    other input depths show the channel mean.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> filter_grid(build_discriminator(32, 1, width=0.125)).shape
        (19, 19, 1)
    """
    convs = conv_layers(model)
    if not convs:
        raise GantransferError(f"model {model.name!r} has no conv layer to show")
    conv = _find_layer(model, layer)[1] if layer else convs[0]
    kernel = np.asarray(conv.kernel)  # (kh, kw, in, out)
    if kernel.shape[2] not in (1, 3):
        kernel = kernel.mean(axis=2, keepdims=True)
    tiles = np.stack([_normalise(kernel[..., i]) for i in range(kernel.shape[-1])])
    return make_grid(tiles, padding=1)


def feature_maps(model: keras.Model, image: np.ndarray, layer: str | None = None,
                 max_maps: int = 64) -> np.ndarray:
    """A conv layer's activations for one image (pixels as the model takes them), tiled.

    Args:
        model: A discriminator, trunk or classifier.
        image: ``(H, W, C)`` input, in the model's input range.
        layer: A layer name (looked up inside nested models too); the first conv layer by default.
        max_maps: At most this many channels are shown.

    Returns:
        A uint8 ``(rows, cols, 1)`` grid, each map scaled over its own range.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> d = build_discriminator(32, 1, width=0.125)
        >>> feature_maps(d, np.zeros((32, 32, 1), "float32"), "block2_conv").shape
        (37, 37, 1)
    """
    name = layer or conv_layers(model)[0].name
    probe = activation_model(model, name)
    x = np.asarray(image, "float32")[None]
    maps = np.asarray(probe(x, training=False))[0]
    tiles = np.stack([_normalise(maps[..., i])[..., None] for i in range(min(max_maps,
                                                                             maps.shape[-1]))])
    return make_grid(tiles, padding=1)


def feature_map_panel(model: keras.Model, image: np.ndarray,
                      layers: list[str] | tuple[str, ...] = ()) -> np.ndarray:
    """:func:`feature_maps` of several conv layers (the first two by default), stacked vertically.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> feature_map_panel(build_discriminator(32, 1, width=0.125), np.zeros((32, 32, 1))).shape
        (97, 52, 1)
    """
    names = list(layers) or [layer.name for layer in conv_layers(model)][:2]
    maps = [feature_maps(model, image, name) for name in names]
    width = max(m.shape[1] for m in maps)
    return np.concatenate([np.pad(m, ((0, 4), (0, width - m.shape[1]), (0, 0))) for m in maps])


def grad_cam(classifier: keras.Model, image: np.ndarray, class_index: int | None = None,
             layer: str | None = None) -> tuple[np.ndarray, int]:
    """Grad-CAM: a map of where the classifier's evidence for a class lies in the image.

    The last conv layer's maps, as the network passes them on (after its BatchNorm and
    activation), are weighted by the mean gradient of the class score with respect to each
    channel, summed, passed through ReLU and scaled to [0, 1]. The gradient comes from
    :func:`gantransfer.backend.value_and_gradient`; the rest is ``keras.ops``.

    Args:
        classifier: A model from pixels to class logits (e.g. from ``gantransfer compare``).
        image: ``(H, W, C)`` pixels in the classifier's input range.
        class_index: The class to explain; the predicted one by default.
        layer: The layer whose maps to weigh; the last conv layer's activation by default.

    Returns:
        ``(heatmap, class_index)``: an ``(H, W)`` float map in [0, 1] at the image's size.

    Example:
        >>> from gantransfer.transfer_learning.classifiers import build_classifier
        >>> from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk
        >>> model = build_classifier(build_gan_trunk(TrunkArchitecture(32, 1, width=0.125)), 10)
        >>> heatmap, index = grad_cam(model, np.full((32, 32, 1), 128, "float32"), class_index=3)
        >>> heatmap.shape, index
        ((32, 32), 3)
    """
    convs = conv_layers(classifier)
    if not convs:
        raise GantransferError(f"model {classifier.name!r} has no conv layer for Grad-CAM")
    chain, target = _chain_to(classifier, layer or convs[-1].name)
    if layer is None:  # the last conv's maps as the network uses them: normalised and activated
        target = _activated(chain[-1], target)
    name = target.name
    x = ops.convert_to_tensor(np.asarray(image, "float32")[None])
    inputs = _levels(classifier, chain, x)  # what each nested model reads
    activations = keras.Model(chain[-1].input, target.output)(inputs[-1], training=False)
    # The rest of each model's graph as a function of what it reads and of the activations (or
    # of its nested model's output); its input stays an input, for the branches that bypass the
    # layer (a ResNet's shortcuts).
    rests = [_rest_of(outer, _call_in(outer, inner).output_tensors[0])
             for outer, inner in zip(chain, chain[1:])]
    innermost = _rest_of(chain[-1], target.output)

    def logits_of(a):
        h = a
        for rest, level_input in zip([innermost, *reversed(rests)], reversed(inputs)):
            h = h if rest is None else rest([level_input, h], training=False)
        return h

    if class_index is None:
        class_index = int(ops.argmax(logits_of(activations)[0]))
    _, grads = backend.value_and_gradient(lambda a: ops.sum(logits_of(a)[:, class_index]),
                                          activations)
    if grads is None:
        raise GantransferError(f"no gradient reaches layer {name!r} from the class score")
    weights = ops.mean(grads, axis=(1, 2))[:, None, None, :]
    cam = ops.relu(ops.sum(weights * activations, axis=-1))[0]
    cam = ops.image.resize(cam[..., None], image.shape[:2], interpolation="bilinear")[..., 0]
    cam = ops.convert_to_numpy(cam)
    peak = cam.max()
    return (cam / peak if peak > 0 else cam).astype("float32"), class_index


def grad_cam_overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image (uint8-range pixels) with the Grad-CAM heatmap laid over it in colour.

    Example:
        >>> grad_cam_overlay(np.zeros((8, 8, 1)), np.ones((8, 8))).shape
        (8, 8, 3)
    """
    from matplotlib import colormaps

    base = np.asarray(image, "float32")
    base = np.repeat(base, 3, axis=-1) if base.shape[-1] == 1 else base
    colour = colormaps["jet"](heatmap)[..., :3] * 255.0
    return np.clip((1 - alpha) * base + alpha * colour, 0, 255).astype("uint8")


def embed(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D coordinates of ``(N, ...)`` features by PCA or t-SNE (scikit-learn).

    Example:
        >>> embed(np.random.default_rng(0).normal(size=(50, 4, 4, 2))).shape
        (50, 2)
    """
    flat = np.asarray(features, "float32").reshape(len(features), -1)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(flat)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(flat) - 1) // 3)))
        return TSNE(n_components=2, random_state=seed, perplexity=perplexity,
                    init="pca").fit_transform(flat)
    raise GantransferError(f"embedding method: received {method!r}, expected pca or tsne")


def embedding_figure(embeddings: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
                     class_names: list[str] | None = None, method: str = "pca") -> Path:
    """Scatter plots of 2-D embeddings coloured by class, one panel per trunk, written as PNG.

    Args:
        embeddings: Panel title -> ``(coordinates (N, 2), labels (N,))``.
        path: The PNG file.
        class_names: Legend names by class index.
        method: Shown in the titles.

    Example:
        >>> import tempfile
        >>> points = np.random.default_rng(0).normal(size=(30, 2))
        >>> path = Path(tempfile.mkdtemp()) / "embedding.png"
        >>> embedding_figure({"pixels": (points, np.arange(30) % 3)}, path).name
        'embedding.png'
    """
    from matplotlib.figure import Figure

    from gantransfer.runs import atomic_save

    panels = len(embeddings)
    columns = min(3, panels)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(4.2 * columns, 3.8 * rows), dpi=100)
    for i, (title, (points, labels)) in enumerate(embeddings.items()):
        axes = figure.add_subplot(rows, columns, i + 1)
        scatter = axes.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=6,
                               vmin=0, vmax=9 if labels.max() < 10 else labels.max())
        axes.set_title(f"{title} ({method.upper()})", fontsize=10)
        axes.set_xticks([])
        axes.set_yticks([])
        if i == 0 and class_names and len(class_names) <= 10:
            handles = scatter.legend_elements()[0]  # one per class present, in sorted order
            present = [int(c) for c in np.unique(labels)]
            axes.legend(handles, [class_names[c] for c in present], fontsize=6, loc="best",
                        markerscale=0.7)
    figure.tight_layout()
    atomic_save(Path(path), lambda name: figure.savefig(name))
    return Path(path)


def save_grid_png(grid: np.ndarray, path: str | Path, min_width: int = 256) -> Path:
    """Writes a tiled uint8 image, upscaled (nearest) to at least ``min_width`` pixels wide."""
    save_png(grid, Path(path), scale=max(1, math.ceil(min_width / grid.shape[1])))
    return Path(path)


def model_input(model: keras.Model, pixels: np.ndarray) -> np.ndarray:
    """Brings uint8 pixels to a model's input: a discriminator takes [-1, 1], the rest [0, 255].

    Images are resized and their channels converted to the model's input shape first; the range is
    the model's declared one (:func:`gantransfer.gan.models.input_range`).
    """
    from gantransfer.data import prepare_images, to_gan_range
    from gantransfer.gan.models import input_range

    _, size, _, channels = model.input_shape
    x = prepare_images(np.asarray(pixels, "uint8"), int(size), int(channels))
    return to_gan_range(x) if input_range(model) == GAN_RANGE else x.astype("float32")


def trunk_features(model: keras.Model, pixels: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The last conv layer's activations (flattened) for uint8 pixels: what a trunk 'sees'."""
    last = conv_layers(model)[-1]
    owner, _ = _find_layer(model, last.name)
    probe = activation_model(model, _activated(owner, last).name)
    x = model_input(model, pixels)
    out = probe.predict(x, batch_size=batch_size, verbose=0)
    return out.reshape(len(out), -1)
