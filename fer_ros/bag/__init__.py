"""Rosbag tools: score fer_node's pipeline on recorded sessions, offline (``fer-ros eval-bag``) or through a live
ROS 2 graph (``fer-ros replay``), without rosbag2 (``rosbags`` reads and writes the bags).

Modules: ``bag_io`` (open/write bags, types), ``decode`` (image messages -> frames, unreadable classified), ``labels``
(ground truth), ``evaluate`` (offline run), ``replay`` (live run), ``records``/``metrics``/``report`` (what a run
produced and the report built from it), ``emotion_codec`` (EmotionArray without rclpy), ``params`` (the node's
parameters file), ``make_bag`` (write image bags for tests and demos). See docs/evaluation.md.
"""
