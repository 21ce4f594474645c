"""seedhp's Hydra plugins. Hydra imports every module here at start-up, so they stay tiny and
import the work from `seedhp` only when a sweep or launch actually runs."""
