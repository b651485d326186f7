"""Built-in signal generators: deterministic synthetic audio, so that training needs no files.

Each generator is a class constructed from the sample rate (Hz) and its own parameters (all
floats, set from a spec query such as ``builtin:ar2?a=-0.4&b=0.5``; ``PARAMETERS`` maps each
name to its default). ``generate(rng, num_samples)`` returns one item, float32
``(num_samples,)`` in [-1, 1], drawn only from the ``numpy.random.Generator`` it is given, so
one rng seed gives one item on every run and machine.

``GENERATORS`` maps the names usable as ``builtin:NAME`` to the classes.
"""
import math
from typing import NamedTuple

import numpy as np
from scipy import signal

PEAK_LEVEL = 0.8  # items of the musical generators are peak-normalised to this level


def _peak_normalise(audio):
    """Scales float audio so that max |audio| is PEAK_LEVEL; returns float32."""
    return (audio * (PEAK_LEVEL / np.max(np.abs(audio)))).astype(np.float32)


def _check_sample_rate(sample_rate, minimum, generator):
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate < minimum:
        raise ValueError(
            f"sample_rate must be an integer >= {minimum} Hz for builtin:{generator}, "
            f"got {sample_rate!r}")


class Plucked:
    """Plucked-string melodies synthesised with Karplus-Strong.

    An item is a melody: a random walk over ``SCALE_HZ`` (two octaves of the A minor
    pentatonic scale, 220-880 Hz) with one tempo per item (notes of one or two beats, a beat
    0.1-0.25 s, so notes last 0.1-0.5 s), one string decay per item (loop gain 0.99-0.999),
    a velocity per note and, for one note in five, a second voice two or three scale steps
    away. Each note is a noise burst (lowpassed by a random amount: brightness) fed into a
    delay line whose feedback averages two neighbouring samples and is scaled by the decay;
    a first-order allpass in the loop tunes the period to ``sample_rate / f0`` exactly. The
    recurrence is an IIR filter, run per note with ``scipy.signal.lfilter``. A note rings
    until the next one starts and then fades out over ``RELEASE_SECONDS``. Items are
    peak-normalised to ``PEAK_LEVEL``.
    """

    PARAMETERS = {}
    SCALE_HZ = tuple(220.0 * 2.0 ** (semitones / 12.0)
                     for semitones in (0, 3, 5, 7, 10, 12, 15, 17, 19, 22, 24))
    RELEASE_SECONDS = 0.02
    _STEPS = (-3, -2, -1, 0, 1, 2, 3)
    _STEP_PROBABILITIES = (0.05, 0.15, 0.25, 0.1, 0.25, 0.15, 0.05)

    def __init__(self, sample_rate):
        _check_sample_rate(sample_rate, 4000, "plucked")
        self.sample_rate = int(sample_rate)

    def generate(self, rng, num_samples):
        """One melody: float32 (num_samples,) in [-0.8, 0.8]."""
        out = np.zeros(num_samples)
        beat_samples = rng.uniform(0.1, 0.25) * self.sample_rate
        decay = rng.uniform(0.99, 0.999)
        release_samples = int(self.RELEASE_SECONDS * self.sample_rate)
        num_notes = len(self.SCALE_HZ)
        degree = int(rng.integers(num_notes))
        onset = 0
        while onset < num_samples:
            length = int(round(beat_samples * rng.choice((1, 2))))
            velocity = rng.uniform(0.5, 1.0)
            degrees = [degree]
            if rng.random() < 0.2:
                interval = int(rng.choice((2, 3)))
                degrees.append(degree + interval if degree + interval < num_notes
                               else degree - interval)
            envelope = np.ones(length + release_samples)
            envelope[length:] = 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, release_samples))
            envelope = envelope[:num_samples - onset]
            for voice in degrees:
                note = self.pluck(rng, self.SCALE_HZ[voice], decay, len(envelope))
                out[onset:onset + len(envelope)] += velocity * envelope * note
            onset += length
            step = int(rng.choice(self._STEPS, p=self._STEP_PROBABILITIES))
            degree = degree + step if 0 <= degree + step < num_notes else degree - step
        return _peak_normalise(out)

    def pluck(self, rng, frequency, decay, num_samples):
        """One Karplus-Strong note of fundamental ``frequency`` Hz: float64 (num_samples,).

        Loop: y[n] = x[n] + decay * A(z) (y[n-L] + y[n-L-1]) / 2 with the allpass
        A(z) = (c + z^-1) / (1 + c z^-1), whose delay (1 - c) / (1 + c) at low frequencies
        supplies the fractional part of the period.
        """
        period = self.sample_rate / frequency
        delay = int(period - 0.6)
        fraction = period - 0.5 - delay  # in [0.1, 1.1): keeps the allpass well inside |c| < 1
        c = (1.0 - fraction) / (1.0 + fraction)
        brightness = rng.uniform(0.0, 0.6)
        burst = signal.lfilter([1.0 - brightness], [1.0, -brightness],
                               rng.uniform(-1.0, 1.0, delay))
        excitation = np.zeros(num_samples)
        excitation[:delay] = (burst - burst.mean())[:num_samples]
        feedback = np.zeros(delay + 3)
        feedback[0] = 1.0
        feedback[1] = c
        feedback[delay:] -= 0.5 * decay * np.array([c, 1.0 + c, 1.0])
        return signal.lfilter([1.0, c], feedback, excitation)


class Tones(NamedTuple):
    """The sinusoids of one ``Sines`` item; each field is a float64 array (num_tones,)."""

    frequency: np.ndarray  # Hz
    amplitude: np.ndarray
    phase: np.ndarray  # radians
    envelope_rate: np.ndarray  # Hz of the slow amplitude envelope
    envelope_depth: np.ndarray  # 0 (constant) .. 0.8: the envelope dips to 1 - depth
    envelope_phase: np.ndarray  # radians


class Sines:
    """Mixtures of 1-3 sinusoids, peak-normalised to ``PEAK_LEVEL``.

    Per item and tone: frequency log-uniform in 80-2000 Hz (at most 0.45 x sample_rate),
    amplitude 0.2-1, random phase; half of the tones get a slow amplitude envelope
    1 - depth * (1 + sin(2 pi rate t + phase)) / 2 with rate 0.1-1 Hz and depth 0.2-0.8.
    """

    PARAMETERS = {}
    MIN_HZ = 80.0
    MAX_HZ = 2000.0

    def __init__(self, sample_rate):
        _check_sample_rate(sample_rate, 400, "sines")
        self.sample_rate = int(sample_rate)

    def draw_tones(self, rng):
        """The tones of one item, drawn from ``rng`` (``generate`` draws these first)."""
        num_tones = int(rng.integers(1, 4))
        high = min(self.MAX_HZ, 0.45 * self.sample_rate)
        modulated = rng.random(num_tones) < 0.5
        return Tones(
            frequency=np.exp(rng.uniform(np.log(self.MIN_HZ), np.log(high), num_tones)),
            amplitude=rng.uniform(0.2, 1.0, num_tones),
            phase=rng.uniform(0.0, 2.0 * np.pi, num_tones),
            envelope_rate=rng.uniform(0.1, 1.0, num_tones),
            envelope_depth=np.where(modulated, rng.uniform(0.2, 0.8, num_tones), 0.0),
            envelope_phase=rng.uniform(0.0, 2.0 * np.pi, num_tones))

    def generate(self, rng, num_samples):
        """One mixture: float32 (num_samples,) in [-0.8, 0.8]."""
        tones = self.draw_tones(rng)
        t = np.arange(num_samples)[:, None] / self.sample_rate
        envelope = 1.0 - tones.envelope_depth * 0.5 * (
            1.0 + np.sin(2.0 * np.pi * tones.envelope_rate * t + tones.envelope_phase))
        carrier = np.sin(2.0 * np.pi * tones.frequency * t + tones.phase)
        return _peak_normalise(np.sum(tones.amplitude * envelope * carrier, axis=1))


class Ar2:
    """A stationary Gaussian AR(2) process X_t = c + a X_{t-1} + b X_{t-2} + e_t.

    e_t ~ N(0, noise^2). Each item starts at the stationary mean mu = c / (1 - a - b) and
    runs a burn-in (until the start-up transient has shrunk by 1e-6, from the modulus of the
    characteristic roots) that is dropped. The series is then multiplied by one fixed factor
    per source, ``scale = 1 / (|mu| + 5 sigma)`` with sigma the stationary standard deviation

        sigma^2 = noise^2 (1 - b) / ((1 + b) ((1 - b)^2 - a^2)),

    and clipped to [-1, 1] (a 5-sigma excursion: clipping touches about one sample in two
    million). The scaled series is AR(2) with the same a, b, intercept ``c * scale`` and noise
    ``noise * scale``: see ``coefficients``. Non-stationary (a, b) are rejected.
    """

    PARAMETERS = {"a": -0.4, "b": 0.5, "c": 0.0, "noise": 1.0}

    def __init__(self, sample_rate, a=-0.4, b=0.5, c=0.0, noise=1.0):
        _check_sample_rate(sample_rate, 1, "ar2")  # it only sets the item lengths
        self.sample_rate = int(sample_rate)
        for name, value in (("a", a), ("b", b), ("c", c), ("noise", noise)):
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number for builtin:ar2, got {value!r}")
        if not (abs(b) < 1.0 and a + b < 1.0 and b - a < 1.0):
            raise ValueError(
                f"builtin:ar2 with a={a!r}, b={b!r} is not stationary: need |b| < 1, "
                "a + b < 1 and b - a < 1")
        if noise <= 0.0:
            raise ValueError(f"noise must be > 0 for builtin:ar2, got {noise!r}")
        self.a, self.b, self.c, self.noise = float(a), float(b), float(c), float(noise)
        self.mean = self.c / (1.0 - self.a - self.b)
        self.std = self.noise * math.sqrt(
            (1.0 - self.b) / ((1.0 + self.b) * ((1.0 - self.b) ** 2 - self.a ** 2)))
        self.scale = 1.0 / (abs(self.mean) + 5.0 * self.std)
        modulus = max(np.abs(np.roots([1.0, -self.a, -self.b])).max(), 1e-3)
        self.burn_in_samples = int(math.ceil(math.log(1e-6) / math.log(modulus)))

    @property
    def coefficients(self):
        """The true coefficients of the scaled series: dict a, b, c_scaled, scale."""
        return {"a": self.a, "b": self.b, "c_scaled": self.c * self.scale, "scale": self.scale}

    def generate(self, rng, num_samples):
        """One series: float32 (num_samples,) in [-1, 1]."""
        innovations = rng.normal(0.0, self.noise, self.burn_in_samples + num_samples)
        deviation = signal.lfilter([1.0], [1.0, -self.a, -self.b], innovations)
        series = (self.mean + deviation[self.burn_in_samples:]) * self.scale
        return np.clip(series, -1.0, 1.0).astype(np.float32)


GENERATORS = {"plucked": Plucked, "ar2": Ar2, "sines": Sines}
