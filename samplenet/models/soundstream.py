"""SoundStream-style neural audio codec: SEANet encoder, residual vector quantizer, SEANet
decoder, with whole-signal and streaming encode/decode.

Architecture only: the training objective (EnCodec's losses), the adversarial discriminator and
the metrics live in ``samplenet.training.codec_training``, which wraps this model for ``fit``.
"""
import math
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from samplenet.layers.residual_vector_quantizer import ResidualVectorQuantizer
from samplenet.layers.seanet import SeanetDecoder, SeanetEncoder
from samplenet.models.base import AudioModel
from samplenet.models.figures import (BACKWARD_FACTOR, FamilyFigures, convolution_walk,
                                      measured_span)
from samplenet.models.registry import register_family
from samplenet.validation import check_bool, check_positive_int


def bitrate_kbps(sample_rate, hop, num_quantizers, codebook_size):
    """Bitrate of residual-vector-quantized codes in kbit/s:
    ``sample_rate / hop`` frames/s x ``num_quantizers`` codes x ``log2(codebook_size)`` bits.
    """
    for name, value in (("sample_rate", sample_rate), ("hop", hop),
                        ("num_quantizers", num_quantizers), ("codebook_size", codebook_size)):
        check_positive_int(name, value)
    return sample_rate / hop * num_quantizers * math.log2(codebook_size) / 1000.0


class CodecPass(NamedTuple):
    """What ``SoundStream.forward`` returns for audio ``(batch, time)``.

    Fields:
      reconstruction: float32 ``(batch, time)``, the decoded audio trimmed to the input length.
      padded: float32 ``(batch, frames * hop)``, the input padded with zeros on the right to a
        multiple of ``hop`` (``frames = ceil(time / hop)``), as the encoder saw it.
      details: the quantizer's ``return_details`` dict (``quantized``, ``codes``,
        ``commitment_losses`` ``(n,)``, ``perplexities`` ``(n,)``, ``num_quantizers_used``; see
        ``ResidualVectorQuantizer``).
      stages: the decoder's stages, coarsest first: stage ``k`` is ``(batch, frames * hop //
        decoder.stage_factors[k])``, the channel mean after upsampling block ``k`` (see
        ``SeanetDecoder``).
    """

    reconstruction: tf.Tensor
    padded: tf.Tensor
    details: dict
    stages: list


@keras.saving.register_keras_serializable(package="samplenet")
@register_family("soundstream")
class SoundStream(AudioModel):
    """Neural audio codec (Zeghidour et al., 2021).

    Audio ``(batch, time)`` float in [-1, 1] -> ``SeanetEncoder`` (``latent_dim``-d frames
    every ``hop = prod(strides)`` samples) -> ``ResidualVectorQuantizer`` (``num_quantizers``
    codebooks of ``codebook_size``) -> ``SeanetDecoder`` -> audio ``(batch, time)``. Bitrate:
    ``sample_rate / hop * num_quantizers * log2(codebook_size)`` bit/s (``bitrate_kbps``).

    Any input length: the audio is padded with zeros on the right to a multiple of ``hop``
    and the reconstruction is trimmed back to the input length. ``encode`` therefore returns
    ``ceil(time / hop)`` frames, and ``decode`` returns ``frames * hop`` samples unless told
    ``num_samples``.

    The quantizer computes a commitment loss per codebook (``forward(...).details``); how it
    is weighed against the reconstruction losses is the training objective's business
    (``codec_loss.commitment_weight``, see ``samplenet.training.codec_training``).

    Args:
      channels: first encoder convolution's channels (doubled at each stride).
      strides: encoder downsampling factors (decoder: reversed).
      latent_dim: size of a latent frame and of the codes' vectors.
      num_quantizers, codebook_size, ema_decay, dead_code_threshold, quantizer_dropout: the
        residual vector quantizer's (see ``ResidualVectorQuantizer``); ``ema_decay`` 0.95
        (SoundStream: 0.99) lets the codebooks follow the fast-moving early latents within
        ~20 steps instead of ~100 (benchmarks/README.md, "Codec settings").
      sample_rate: Hz.
      segment_samples: training segment length in samples.
      weight_norm: weight-normalise every encoder and decoder convolution (EnCodec; see
        ``SeanetEncoder``).
      zero_init_residual: start every residual unit of the encoder and decoder as the
        identity (see ``seanet``); without it the initial decoder output is loud noise.
    """

    data_kind = "segments"
    kind = "codec"

    def __init__(self, channels=32, strides=(2, 4, 5, 8), latent_dim=128, num_quantizers=8,
                 codebook_size=1024, sample_rate=16000, segment_samples=16000,
                 ema_decay=0.95, dead_code_threshold=0.1, quantizer_dropout=1.0,
                 weight_norm=False, zero_init_residual=True, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("channels", channels), ("latent_dim", latent_dim),
                            ("sample_rate", sample_rate), ("segment_samples", segment_samples)):
            check_positive_int(name, value)
        for name, value in (("weight_norm", weight_norm),
                            ("zero_init_residual", zero_init_residual)):
            check_bool(name, value)
        self.encoder = SeanetEncoder(channels, strides, latent_dim, weight_norm=weight_norm,
                                     zero_init_residual=zero_init_residual, name="encoder")
        self.quantizer = ResidualVectorQuantizer(
            num_quantizers, codebook_size, ema_decay=ema_decay,
            dead_code_threshold=dead_code_threshold, quantizer_dropout=quantizer_dropout,
            name="quantizer")
        self.decoder = SeanetDecoder(channels, strides, weight_norm=weight_norm,
                                     zero_init_residual=zero_init_residual, name="decoder")
        self.channels = channels
        self.strides = self.encoder.strides
        self.latent_dim = latent_dim
        self.num_quantizers = num_quantizers
        self.codebook_size = codebook_size
        self.sample_rate = sample_rate
        self.segment_samples = segment_samples
        self.ema_decay = ema_decay
        self.dead_code_threshold = dead_code_threshold
        self.quantizer_dropout = quantizer_dropout
        self.weight_norm = weight_norm
        self.zero_init_residual = zero_init_residual

    # ----- structure ---------------------------------------------------------------------
    @property
    def hop(self):
        """Audio samples per code frame."""
        return self.encoder.hop

    @property
    def frame_rate(self):
        """Code frames per second."""
        return self.sample_rate / self.hop

    def bitrate_kbps(self, num_quantizers=None):
        """Bitrate in kbit/s using the first ``num_quantizers`` codebooks (default all)."""
        return bitrate_kbps(self.sample_rate, self.hop,
                            self.quantizer.check_num_quantizers(num_quantizers),
                            self.codebook_size)

    def build(self, input_shape=None):
        self.encoder.build((None, None))
        self.quantizer.build((None, None, self.latent_dim))
        self.decoder.build((None, None, self.latent_dim))
        self.built = True

    def data_options(self):
        return {"segment_samples": self.segment_samples}

    def example_batch(self, batch_size=1):
        return {"audio": np.zeros((batch_size, self.segment_samples), np.float32)}

    # ----- codec -------------------------------------------------------------------------
    def _pad(self, audio):
        audio = tf.cast(audio, tf.float32)
        if audio.shape.rank != 2:
            raise ValueError(f"audio must be (batch, time), got shape {audio.shape}")
        extra = tf.math.floormod(-tf.shape(audio)[1], self.hop)
        return tf.pad(audio, [[0, 0], [0, extra]])

    def forward(self, audio, training=False, num_quantizers=None):
        """The whole codec on audio ``(batch, time)``, with what training needs on the way.

        Args:
          audio: float audio ``(batch, time)``, any length.
          training: quantizer dropout and codebook updates (k-means initialisation, EMA,
            dead-code replacement) when True.
          num_quantizers: codebooks to use (default all).
        Returns a ``CodecPass`` (reconstruction, padded input, quantizer details, decoder
        stages).
        """
        self.ensure_built()
        padded = self._pad(audio)
        latent = self.encoder(padded)
        details = self.quantizer(latent, training=training, num_quantizers=num_quantizers,
                                 return_details=True)
        decoded, stages = self.decoder(details["quantized"], return_stages=True)
        return CodecPass(decoded[:, :tf.shape(audio)[1]], padded, details, stages)

    def call(self, inputs, training=False):
        """Reconstruction ``(batch, time)`` of ``inputs`` (an audio tensor or a dict with
        ``"audio"``) through all quantizers (quantizer dropout and codebook updates when
        ``training``)."""
        audio = inputs["audio"] if isinstance(inputs, dict) else inputs
        return self.forward(audio, training=training).reconstruction

    def encode(self, audio, num_quantizers=None):
        """Audio ``(batch, time)`` -> int32 codes ``(batch, n, ceil(time / hop))`` using the
        first ``num_quantizers`` codebooks (default all)."""
        self.ensure_built()
        return self.quantizer.encode(self.encoder(self._pad(audio)), num_quantizers)

    def decode(self, codes, num_samples=None):
        """Codes ``(batch, n, frames)`` (from the first n codebooks) -> audio float32
        ``(batch, frames * hop)``, trimmed to ``num_samples`` if given."""
        self.ensure_built()
        audio = self.decoder(self.quantizer.decode(codes))
        return audio if num_samples is None else audio[:, :num_samples]

    def encode_stream(self, chunks, num_quantizers=None):
        """Encode a long signal chunk by chunk, carrying every convolution's left context.

        Args:
          chunks: iterable of float audio ``(batch, time_k)``; every ``time_k`` must be a
            multiple of ``hop`` except the last one's (padded with zeros, as ``encode`` pads).
          num_quantizers: codebooks to use (default all).
        Yields NumPy int32 codes ``(batch, n, ceil(time_k / hop))``; concatenated along the
        last axis they equal ``encode`` of the concatenated chunks.
        """
        self.ensure_built()
        state, finished = None, False
        for chunk in chunks:
            chunk = tf.convert_to_tensor(chunk, tf.float32)
            if finished:
                raise ValueError(f"only the last chunk may have a length that is not a multiple "
                                 f"of the hop ({self.hop})")
            finished = chunk.shape[1] % self.hop != 0
            if state is None:
                state = self.encoder.initial_state(chunk.shape[0])
            latent, state = self.encoder.stream(self._pad(chunk), state)
            yield self.quantizer.encode(latent, num_quantizers).numpy()

    def decode_stream(self, code_chunks, num_samples=None):
        """Decode codes chunk by chunk with carried decoder state.

        Args:
          code_chunks: iterable of int codes ``(batch, n, frames_k)``.
          num_samples: stop after this many samples in total (None = all).
        Yields NumPy float32 audio ``(batch, frames_k * hop)`` (the last chunk trimmed to
        ``num_samples``); concatenated, they equal ``decode`` of the concatenated codes.
        """
        self.ensure_built()
        state, emitted = None, 0
        for codes in code_chunks:
            latent = self.quantizer.decode(codes)
            if state is None:
                state = self.decoder.initial_state(latent.shape[0])
            audio, state = self.decoder.stream(latent, state)
            audio = audio.numpy()
            if num_samples is not None:
                audio = audio[:, :max(num_samples - emitted, 0)]
            emitted += audio.shape[1]
            yield audio

    def figures(self):
        """``FamilyFigures`` of this codec (see ``samplenet.models.figures``)."""
        encoding, decoding = self.encoder.convolutions(), self.decoder.convolutions()
        encoder_macs, encoder_floats, receptive = convolution_walk(encoding, 1)
        decoder_macs, decoder_floats, _ = convolution_walk(decoding, self.hop)
        search_macs = self.num_quantizers * self.codebook_size * self.latent_dim / self.hop
        hop = self.hop
        length = (-(-receptive // hop) + 1) * hop

        def measure():
            # The architecture's span, on a fresh encoder of the same configuration with every
            # residual branch live: zero-initialised branches (``zero_init_residual``) pass no
            # gradient to their inputs until trained.
            encoder = type(self.encoder).from_config({**self.encoder.get_config(),
                                                      "zero_init_residual": False})
            return measured_span(encoder, length, position=length // hop - 1)

        return FamilyFigures(
            depth=len(encoding) + len(decoding),
            depth_rule=f"{len(encoding)} encoder + {len(decoding)} decoder convolutions",
            receptive_field=receptive, frame_context=None,
            flops_per_sample={"encode": 2.0 * (encoder_macs + search_macs),
                              "decode": 2.0 * decoder_macs,
                              "training": 2.0 * BACKWARD_FACTOR * (encoder_macs + search_macs
                                                                   + decoder_macs)},
            activation_floats=1 + encoder_floats + decoder_floats,
            default_seq_len=self.segment_samples, measure=measure,
            notes=(f"receptive_field is the encoder's: the audio samples one code frame (every "
                   f"{hop} samples) depends on",
                   "training FLOPs leave out the discriminator and the spectral losses"))

    def get_config(self):
        return {"channels": self.channels, "strides": list(self.strides),
                "latent_dim": self.latent_dim, "num_quantizers": self.num_quantizers,
                "codebook_size": self.codebook_size, "sample_rate": self.sample_rate,
                "segment_samples": self.segment_samples, "ema_decay": self.ema_decay,
                "dead_code_threshold": self.dead_code_threshold,
                "quantizer_dropout": self.quantizer_dropout, "weight_norm": self.weight_norm,
                "zero_init_residual": self.zero_init_residual}
