"""inboxrl: build, measure and train email research agents on real mail.

Data flows one way: mail -> store -> tools -> agent -> trajectory -> scoring (judge, rubric, reward, cost) -> trainer -> evaluation -> report.
"""

__version__ = "0.1.0"
