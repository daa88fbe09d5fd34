"""The one exception type of the data package.

Every problem with a user's data (a missing, truncated or corrupt file, an unknown format, values
out of range) is reported as a :class:`DataError` that names the file and, where it helps, the
sequence or line inside it. Callers catch one type; nothing from deep inside numpy, wave, pickle
or xml escapes the loaders.
"""

import os


class DataError(ValueError):
    """A data file or data specification that cannot be used.

    :param str message: what is wrong.
    :param path: the offending file or folder, if any; it is put in front of the message.
    :param str where: where inside the file (e.g. ``"train sequence 3, step 17"``), if known.
    """

    def __init__(self, message, path=None, where=None):
        self.path = None if path is None else os.fspath(path)
        self.where = where
        self.reason = message
        parts = []
        if self.path is not None:
            parts.append(str(self.path))
        if where:
            parts.append(str(where))
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
