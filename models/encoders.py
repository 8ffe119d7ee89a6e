"""The pretrainable ResNet50 encoder: its input convention, its weights, its output stride.

**Input convention inside the model.** Keras's ImageNet ResNet50 weights were trained on the
"caffe" convention (BGR, 0-255, ImageNet mean subtracted, ``resnet50.preprocess_input``), while
every project model takes ``models.normalization.normalize_image``'s [0, 1] RGB. The encoder's
first layer, :class:`ImageNetCaffePreprocessing`, converts one to the other, so training,
batch prediction and a reloaded ``model.keras`` all feed the weights what they were trained on
and no caller ever pre-processes for a particular architecture.

**Weights** (``encoder_weights``, the ``--encoder-weights`` flag): ``none`` (random init),
``imagenet`` (Keras's cache ``$KERAS_HOME/models/<file>``, default ``~/.keras``, else a
download that fails at once when offline, naming the file and where to put it), or a local or
``gs://`` path to a ResNet50 weights file (Keras 2 ``.h5`` as Keras publishes them, or Keras 3
``.weights.h5`` from ``ResNet50(include_top=False).save_weights``). Every option loads into a
plain ``keras.applications.ResNet50`` first and is copied into the encoder *by layer name*,
so the same files serve the stride-32 encoder of ``resnet50_unet`` and the dilated stride-16
one of ``deeplabv3plus``, whose layers keep Keras's names.

**Freezing.** The encoder is one nested model named :data:`ENCODER_NAME`; freezing it
(``models.architectures.set_encoder_trainable``) sets ``trainable`` on every inner layer, and a
non-trainable ``BatchNormalization`` runs in inference mode in Keras 3 even under
``training=True``: its moving statistics stay those of the pretrained weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

import keras
from keras import layers, ops

from models.registry import KERAS_PACKAGE

ENCODER_NAME = "resnet50_encoder"
ENCODER_WEIGHTS_KEYWORDS: tuple[str, ...] = ("none", "imagenet")

# Keras's published ImageNet ResNet50 without its classifier (keras.applications.resnet).
RESNET50_IMAGENET_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET50_IMAGENET_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + RESNET50_IMAGENET_FILE
)
RESNET50_IMAGENET_MD5 = "4d473c1dd8becc155b73f8504c6f6626"
# Seconds to wait for the download server before declaring the machine offline.
DOWNLOAD_TIMEOUT_S = 15.0
# ImageNet channel means in BGR order, as ``keras.applications.resnet50.preprocess_input``.
IMAGENET_BGR_MEAN: tuple[float, float, float] = (103.939, 116.779, 123.68)

# Stages 2-5 of ResNet50: the layers whose stride changes and those dilated at output stride 16.
RESNET50_STAGE5_STRIDED: tuple[str, ...] = ("conv5_block1_1_conv", "conv5_block1_0_conv")
RESNET50_STAGE5_3X3: tuple[str, ...] = tuple(f"conv5_block{b}_2_conv" for b in (1, 2, 3))
RESNET50_OUTPUT_STRIDES: tuple[int, ...] = (16, 32)


class EncoderWeightsError(RuntimeError):
    """Encoder weights that cannot be had: offline, missing or unreadable file, wrong shape."""


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class ImageNetCaffePreprocessing(layers.Layer):
    """[0, 1] RGB → the "caffe" convention of Keras's ImageNet ResNet50 weights.

    ``x * 255``, RGB → BGR, minus the ImageNet mean: exactly
    ``keras.applications.resnet50.preprocess_input(x * 255)``, as a layer so it is part of the
    saved model. No weights, so freezing and weight files ignore it.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def build(self, input_shape):
        if input_shape[-1] != 3:
            raise ValueError(f"ImageNet preprocessing needs 3 RGB channels, got {input_shape}")

    def call(self, inputs):
        bgr = ops.flip(inputs, axis=-1) * ops.cast(255.0, inputs.dtype)
        return bgr - ops.cast(ops.convert_to_tensor(IMAGENET_BGR_MEAN), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def keras_cache_dir() -> str:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``.

    Read at call time (Keras reads ``KERAS_HOME`` once, at import), so a process or a test that
    sets it later is honoured.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def _md5(path: str) -> str:
    digest = hashlib.md5()  # Keras publishes MD5 checksums for its weights
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_imagenet_weights(destination: str, *, url: str | None = None) -> None:
    """Download the ImageNet ResNet50 file to ``destination`` (atomic, checksum verified).

    One attempt with a short connect timeout, no retries: offline, it raises at once with the
    file name and where to put it by hand, instead of hanging in Keras's downloader.
    """
    url = url or RESNET50_IMAGENET_URL
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    tmp = f"{destination}.part-{os.getpid()}"
    try:
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            open(tmp, "wb") as out,
        ):
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as err:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise EncoderWeightsError(
            f"cannot download the ImageNet weights {RESNET50_IMAGENET_FILE} from {url} "
            f"({type(err).__name__}: {err}). Offline, copy that file to {destination} "
            "(Keras's cache; set KERAS_HOME to move it) or pass its path or gs:// URI as "
            "--encoder-weights, or use --encoder-weights none to train from scratch."
        ) from err
    if url == RESNET50_IMAGENET_URL and _md5(tmp) != RESNET50_IMAGENET_MD5:
        os.remove(tmp)
        raise EncoderWeightsError(f"downloaded {url} does not match its published MD5")
    os.replace(tmp, destination)


def imagenet_weights_file() -> str:
    """The local ImageNet ResNet50 file: Keras's cached copy if there, else downloaded there.

    A cached file is used as it is (Keras's own loader would re-download a file whose checksum
    differs; here the cache is where an offline user puts the file on purpose).
    """
    path = os.path.join(keras_cache_dir(), RESNET50_IMAGENET_FILE)
    if not os.path.isfile(path):
        download_imagenet_weights(path)
    return path


@contextlib.contextmanager
def encoder_weights_file(encoder_weights: str) -> Iterator[str | None]:
    """The local weights file ``encoder_weights`` names (None for ``none``), while in use.

    ``gs://`` (any remote URI) is copied through ``pipelines.io.storage`` to a temporary file;
    storage (Beam's filesystems) is imported only then, so building a model stays light.
    """
    from pipelines.io import storage

    keyword = encoder_weights.lower()
    if keyword == "none":
        yield None
    elif keyword == "imagenet":
        yield imagenet_weights_file()
    elif storage.is_remote(encoder_weights):
        if not storage.exists(encoder_weights):
            raise FileNotFoundError(f"encoder weights file not found: {encoder_weights}")
        with storage.local_copy(encoder_weights) as path:
            yield path
    elif not os.path.isfile(encoder_weights):
        raise FileNotFoundError(
            f"encoder weights file not found: {encoder_weights} "
            f"(encoder_weights is one of {', '.join(ENCODER_WEIGHTS_KEYWORDS)}, a local path or "
            "a gs:// URI of a ResNet50 .h5 / .weights.h5 file)"
        )
    else:
        yield encoder_weights


def pretrained_resnet50(encoder_weights: str, input_channels: int = 3) -> keras.Model | None:
    """``keras.applications.ResNet50`` (no top) loaded as ``encoder_weights`` says; None for none.

    The reference the encoder's weights are copied from, and what the tests compare against.
    """
    if encoder_weights.lower() == "none":
        return None
    if encoder_weights.lower() == "imagenet" and input_channels != 3:
        raise ValueError(f"imagenet weights need 3 input channels, got {input_channels}")
    with encoder_weights_file(encoder_weights) as path:
        resnet = keras.applications.ResNet50(
            include_top=False, weights=None, input_shape=(None, None, input_channels)
        )
        try:
            resnet.load_weights(path)
        except Exception as err:  # h5py/Keras raise many types for a file that does not fit
            raise EncoderWeightsError(
                f"could not load ResNet50 encoder weights from {encoder_weights}: "
                f"{type(err).__name__}: {err}"
            ) from err
    return resnet


def _dilated(layer: layers.Layer) -> layers.Layer:
    """A fresh copy of ``layer`` for output stride 16: stage 5 unstrided, its 3x3s dilated 2."""
    config = layer.get_config()
    if layer.name in RESNET50_STAGE5_STRIDED:
        config["strides"] = (1, 1)
    elif layer.name in RESNET50_STAGE5_3X3:
        config["dilation_rate"] = (2, 2)
    return layer.__class__.from_config(config)


def resnet50_backbone(*, output_stride: int = 32, input_channels: int = 3) -> keras.Model:
    """ResNet50 (no top) behind the ImageNet preprocessing, with Keras's layer names.

    ``output_stride=16`` (DeepLab): stage 5 keeps stride 1 and dilates its 3x3 convs by 2, so
    the receptive field is that of the original and the weights fit unchanged (a clone of
    Keras's graph with those configs changed). Channels other than 3 skip the preprocessing
    (no ImageNet convention applies to them).
    """
    if output_stride not in RESNET50_OUTPUT_STRIDES:
        raise ValueError(
            f"output_stride must be one of {RESNET50_OUTPUT_STRIDES}, got {output_stride}"
        )
    image = keras.Input((None, None, input_channels), name="encoder_image")
    x = image
    if input_channels == 3:
        x = ImageNetCaffePreprocessing(name="imagenet_preprocessing")(image)
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_tensor=x)
    if output_stride == 16:
        resnet = keras.models.clone_model(resnet, clone_function=_dilated)
    return resnet


def copy_weights_by_name(source: keras.Model, target: keras.Model) -> int:
    """Copy every weighted layer of ``source`` into ``target``'s layer of the same name.

    Returns the number of layers copied; a layer missing in ``target`` or of another shape
    raises, so a partial load can never pass silently.
    """
    copied = 0
    for layer in source.layers:
        if not layer.weights:
            continue
        try:
            target.get_layer(layer.name).set_weights(layer.get_weights())
        except ValueError as err:
            raise EncoderWeightsError(f"encoder weights for layer {layer.name!r}: {err}") from err
        copied += 1
    return copied


def build_resnet50_encoder(
    taps: Sequence[str],
    *,
    encoder_weights: str = "none",
    output_stride: int = 32,
    input_channels: int = 3,
) -> keras.Model:
    """The encoder model (named ``ENCODER_NAME``): [0, 1] RGB in, the ``taps`` features out.

    ``taps`` are Keras ResNet50 layer names (e.g. ``conv2_block3_out``); the weights come as
    ``encoder_weights`` says (see the module docstring).
    """
    backbone = resnet50_backbone(output_stride=output_stride, input_channels=input_channels)
    pretrained = pretrained_resnet50(encoder_weights, input_channels)
    if pretrained is not None:
        copy_weights_by_name(pretrained, backbone)
    outputs = [backbone.get_layer(name).output for name in taps]
    # inputs[0], not the one-element list keras.applications gives a model built on a tensor:
    # callers pass one tensor, and Keras warns when the structure differs.
    return keras.Model(backbone.inputs[0], outputs, name=ENCODER_NAME)
