"""Sample template contexts for `duban mail preview KIND` and the rendering tests."""

from __future__ import annotations

from datetime import date
from typing import Any


def sample_context(kind: str) -> dict[str, Any]:
    """A complete, realistic context for `kind` (same keys `notifications.compose` builds)."""
    base: dict[str, Any] = {
        "organisation": "长治市科学技术协会",
        "recipient_name": "学会部 王芳",
        "sent_on": date(2021, 6, 28),
        "plan": {"title": "长治市科协2021年工作要点", "year": 2021},
    }
    if kind == "report":
        base["recipient_name"] = "李明 主席"
        base["report"] = {
            "period_label": "2021年第二季度",
            "kind_label": "督办通报",
            "as_of_date": date(2021, 6, 30),
            "summary_lines": ["18项任务中绿灯12项、黄灯4项、红灯2项", "按期报送率 83%"],
            "attachments": ["2021Q2-督办通报.docx", "2021Q2-督办通报.html"],
        }
        base["instruct_links"] = [
            {
                "item": "第4项 搭建高水平科技开放交流平台",
                "colour": "红灯",
                "url": "http://127.0.0.1:8765/i/SAMPLE-TOKEN",
                "expires_on": date(2021, 7, 30),
            }
        ]
        return base
    base.update(
        {
            "item": {"label": "第4项", "title": "搭建高水平科技开放交流平台"},
            "department": {"name": "学会部"},
            "role_label": "牵头",
            "phase": {"name": "落实达标", "range": "2021年5月中旬至12月中旬"},
            "due_date": date(2021, 6, 30),
            "asks": "",
            "overdue_days": -2,
            "targets": [
                {"text": "举办学术交流活动不少于200场次", "unit": "场次", "reported": 86.0},
                {"text": "新建院士专家工作站5家以上", "unit": "家", "reported": None},
            ],
            "last": {
                "version": 1,
                "submitted_on": date(2021, 3, 31),
                "status_label": "按计划推进",
                "narrative": "已与省学会签订合作协议，上半年活动计划已印发。",
                "problems": "部分县区承办能力不足。",
                "next_steps": "6月召开推进会。",
            },
            "form_url": "http://127.0.0.1:8765/c/SAMPLE-TOKEN",
        }
    )
    if kind == "reminder":
        base["overdue_days"] = 3
        base["sent_on"] = date(2021, 7, 5)
    if kind == "escalation":
        base.update(
            {
                "recipient_name": "张伟 副主席",
                "sent_on": date(2021, 7, 9),
                "overdue_days": 7,
                "level": 1,
                "level_label": "分管领导督办",
                "reason": "逾期5个工作日未报送",
                "instruct_links": [
                    {
                        "leader": "分管领导 张伟",
                        "url": "http://127.0.0.1:8765/i/SAMPLE-TOKEN",
                        "expires_on": date(2021, 8, 8),
                    }
                ],
            }
        )
    if kind == "instruction":
        base["instruction"] = {
            "leader": "分管领导 张伟",
            "text": "请学会部倒排工期，7月底前完成院士专家工作站选址。",
            "given_on": date(2021, 7, 9),
            "source_label": "邮件链接批示",
        }
    if kind == "receipt":
        base["submission"] = {
            "version": 2,
            "submitted_text": "2021年6月29日（星期二）16:05",
            "status_label": "按计划推进",
            "narrative": "上半年举办学术交流活动112场次。",
            "problems": "",
            "next_steps": "下半年重点推进院士专家工作站建设。",
            "figures": [{"text": "举办学术交流活动不少于200场次", "value": 112.0, "unit": "场次"}],
            "extension": None,
            "attachments": [
                {
                    "file_name": "学术交流活动台账.xlsx",
                    "kind_label": "Excel表格",
                    "size_text": "48 KB",
                    "url": "https://duban.example.org/f/示例",
                }
            ],
            "attachment_link_days": 30,
        }
    if kind == "returned":
        base["returned"] = {
            "version": 1,
            "submitted_text": "2021年6月29日（星期二）16:05",
            "reason": "未报送举办场次的具体数据，请补充活动清单。",
            "reviewer": "督查室 赵敏",
        }
    if kind == "review_overdue":
        base["recipient_name"] = "李明 主任"
        base["review"] = {
            "version": 1,
            "submitted_text": "2021年6月29日（星期二）16:05",
            "due_date": date(2021, 7, 2),
            "waiting_days": 9,
        }
    if kind == "closure":
        base["closure"] = {
            "action": "rejected",
            "reason": "佐证材料不足，请补充院士专家工作站的挂牌文件。",
            "by": "督查室 赵敏",
            "summary": "全年举办学术交流活动212场次，新建院士专家工作站5家。",
            "request_id": 3,
        }
    if kind == "extension_decision":
        base["due_date"] = date(2021, 7, 15)
        base["decision"] = {
            "approved": True,
            "label": "已批准",
            "requested_date": date(2021, 7, 15),
            "previous_due_date": date(2021, 6, 30),
            "request_reason": "场地改造，活动顺延。",
            "reason": "",
            "decided_by": "督查室",
        }
    return base
