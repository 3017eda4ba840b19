"""The stored study that ``run``, ``front``, ``export``, ``validate`` and ``confirm`` all read and write.

- :mod:`.storage`: opening a storage (URL rules, drivers, passwords masked in every message), the
  default storage and study name, the storage a search writes to;
- :mod:`.journal`: the journal-file backend whose appends are whole or absent, and its repair;
- :mod:`.record`: the keys a trial and a study store (the one place that names them);
- :mod:`.results`: a study read back as objectives, trials and front rows for :mod:`e2gcsearch.report`;
- :mod:`.queue`: queueing chosen points once; :mod:`.lost`: the trials of workers that died;
- :mod:`.fingerprint`: what makes two trials comparable (training, measurement, device).

Nothing here samples, trains or measures: that is :mod:`e2gcsearch.search`, which sits above.
"""
