"""pyro-vrnn: recurrent latent-variable models of sequences (VRNN, STORN, RNN) as Pyro programs."""

__version__ = "0.1.0"
