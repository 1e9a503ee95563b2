"""``python -m course_utils``: the course's command line (see ``course_utils.support.cli``)."""

from course_utils.support.cli import main

raise SystemExit(main())
