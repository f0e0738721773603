// The bidder portal: a tender's bid page (the form, documents, sealing in the browser, the
// upload with its progress, the receipt checked here, replacing and withdrawing, checking a
// saved receipt, revealing a bid in the decryption window) and the page of the organization's
// own decryption key. Only sealed files and file keys leave the browser, never a plaintext
// bid or an identity.
import "./bidder.css";
import { ApiError, api, serverNow, upload } from "./api.js";
import { download, field, h, money, notice, when } from "./dom.js";
import { addTexts, t } from "./i18n.js";
import { countdown, loadTender, tenderFacts } from "./public.js";
import * as sealing from "./sealing.js";

addTexts({
  "zh-CN": {
    bid_title: "投标：{title}",
    bid_back: "返回项目详情",
    bid_sign_in_first: "请先登录投标人账号再投标。",
    bid_sign_in_link: "登录后投标",
    bid_not_bidder: "只有投标人账号可以投标；您当前以“{role}”身份登录。",
    bid_facts: "项目信息",
    bid_mine: "我的投标",
    bid_none: "您尚未对本项目投标。",
    bid_withdrawn_at: "您已于 {at} 撤回投标，截止前可以重新投标。",
    bid_version: "版本",
    bid_sha256: "SHA-256（密封文件）",
    bid_size: "大小",
    bid_received: "接收时间",
    bid_status: "状态",
    bid_status_active: "有效",
    bid_status_superseded: "已被替换",
    bid_status_withdrawn: "已撤回",
    bid_receipts: "回执记录",
    bid_kind: "类型",
    bid_kind_bid: "投标",
    bid_kind_withdrawal: "撤回",
    bid_check: "核验",
    bid_check_ok: "签名有效",
    bid_check_bad: "未通过：{problems}",
    bid_download: "下载",
    bid_download_named: "下载第 {version} 版{kind}回执",
    bid_form_title: "密封并提交投标",
    bid_replace_title: "替换投标（提交新版本）",
    bid_replaces: "提交后将替换您当前的第 {version} 版投标；以最后一版为准。",
    bid_sealing_platform: "投标文件在本浏览器中用 age 加密（密封）给本项目的开标公钥，平台在截止时间自动解密。上传的只有密文。",
    bid_sealing_bidder: "本项目由投标人在线解密：投标文件在本浏览器中加密给贵单位登记的解密密钥{backup}。开标时您需要用身份文件在线解密。上传的只有密文。",
    bid_sealing_backup: "以及本项目的开标公钥（平台备份解密）",
    bid_closed: "本项目当前不接受投标（{status}）。",
    bid_deadline_passed: "投标截止时间已过，不再接受投标。",
    bid_required_mark: "（必填）",
    bid_hint_price: "金额（{currency}），最多两位小数，不带千位分隔符；不高于最高投标限价 {ceiling}{floor}",
    bid_hint_floor: "，不低于最低限价 {floor}",
    bid_hint_decimal: "数字，可带小数点，例如 12.5",
    bid_hint_integer: "整数，例如 180",
    bid_hint_text: "文字，最多 10000 个字符",
    bid_hint_boolean: "勾选表示“是”",
    bid_hint_range: "范围：{range}",
    bid_hint_min: "不小于 {min}",
    bid_hint_max: "不大于 {max}",
    bid_err_required: "此项必填",
    bid_err_text_long: "最多 {n} 个字符",
    bid_err_text_invalid: "含有无效字符",
    bid_err_integer: "请填写整数，例如 180",
    bid_err_integer_range: "整数不能超过 ±{n}",
    bid_err_money: "请填写金额：数字和小数点，例如 1234567.89，不带千位分隔符或货币符号",
    bid_err_decimal: "请填写数字，例如 12.5，不带分隔符",
    bid_err_cents: "金额最多两位小数",
    bid_err_positive: "金额必须大于 0",
    bid_err_min: "不能小于 {min}",
    bid_err_max: "不能大于 {max}",
    bid_err_above_ceiling: "高于最高投标限价 {ceiling}",
    bid_err_below_floor: "低于最低限价 {floor}",
    bid_err_form_large: "投标表单超过 1 MiB",
    bid_err_name_empty: "文件名为空",
    bid_err_name_long: "文件名超过 {n} 个字符",
    bid_err_name_control: "文件名含有控制字符或方向控制符",
    bid_err_name_character: "文件名含有冒号、斜杠或反斜杠",
    bid_fix_fields: "请更正标出的 {n} 项后再提交；没有上传任何内容。",
    bid_attachments: "附件（可选）",
    bid_attachments_hint: "技术方案、资质证明等文件，与投标表单一起打包（ZIP）后密封",
    bid_attached: "已添加的附件",
    bid_no_attachments: "没有附件：只密封投标表单。",
    bid_remove: "移除",
    bid_remove_named: "移除附件 {name}",
    bid_attach_refused: "{name}：{reason}",
    bid_attach_duplicate: "已有同名附件（不区分大小写）",
    bid_attach_too_big: "单个附件最大 512 MiB",
    bid_attach_total: "附件合计最大 1024 MiB",
    bid_attach_too_many: "附件最多 {n} 个",
    bid_submit: "密封并提交",
    bid_preparing: "正在打包投标文件…",
    bid_sealing: "正在密封（加密）…",
    bid_uploading: "正在上传密封文件…",
    bid_progress: "{percent}% · {done} / {total}",
    bid_upload_failed: "上传失败：{reason}",
    bid_retry: "重试上传",
    bid_retry_hint: "重试会发送同一个密封文件和同一个幂等键：如果平台其实已经收到，会返回原回执，不会产生新版本。",
    bid_seal_failed: "密封失败：{reason}",
    bid_refuse_status: "本项目当前不接受投标（{status}）",
    bid_refuse_deadline: "投标截止时间已过（以平台时钟为准）",
    bid_refuse_no_recipient: "本项目没有可用于密封的开标公钥",
    bid_refuse_no_key: "本项目由投标人在线解密，请先在“我的解密密钥”页面生成、登记并验证贵单位的密钥。",
    bid_refuse_unverified: "贵单位登记的密钥尚未验证。请先在“我的解密密钥”页面用身份文件完成密钥验证，确保开标时能够解密。",
    bid_refuse_identity_file: "这不是 age 身份文件：其中没有 AGE-SECRET-KEY-1… 行",
    bid_to_keys: "前往“我的解密密钥”",
    bid_receipt_title: "投标回执",
    bid_withdrawal_receipt_title: "撤回回执",
    bid_receipt_verified: "回执已核验：平台签名有效（密钥 {key}），回执中的项目与您刚上传的密封文件一致（SHA-256 {sha256}，{size} 字节）。",
    bid_withdrawal_verified: "撤回回执已核验：平台签名有效（密钥 {key}），撤回的是第 {version} 版投标。",
    bid_receipt_failed: "回执核验未通过：{problems}",
    bid_receipt_replayed: "这次上传平台此前已经收到：以下是当时的回执，没有产生新版本。",
    bid_receipt_download: "下载回执",
    bid_leaf_hash: "日志叶哈希",
    bid_bid_id: "投标编号",
    bid_rx_not_object: "回执不是 JSON 对象",
    bid_rx_no_body: "回执没有 body",
    bid_rx_no_signature: "回执没有 key_id 和 signature",
    bid_rx_unknown_key: "密钥 {key} 不是平台公布的签名密钥",
    bid_rx_bad_signature: "签名与内容不符：回执被改动过",
    bid_rx_not_canonical: "回执内容不是规范 JSON",
    bid_rx_bad_leaf: "leaf_hash 不是回执内容的 RFC 6962 叶哈希",
    bid_rx_mismatch: "回执中 {name} 为 {got}，应为 {value}",
    bid_rx_no_version: "回执没有版本号",
    bid_withdraw: "撤回投标",
    bid_withdraw_title: "撤回投标？",
    bid_withdraw_text: "撤回后第 {version} 版投标不再有效。截止时间前您仍可以重新投标。",
    bid_withdraw_confirm: "确认撤回",
    bid_withdraw_cancel: "保留投标",
    bid_withdraw_failed: "撤回失败：{reason}",
    bid_saved_title: "核验已保存的回执",
    bid_saved_text: "选择此前下载的回执文件：本页用平台公布的公钥核验签名；开标时日志封存后，还会核验该回执确实在本项目的日志中。",
    bid_saved_file: "回执文件",
    bid_saved_not_json: "这个文件不是 JSON 回执",
    bid_saved_ok: "签名有效：这是平台签发的{kind}回执（第 {version} 版，{at}）。",
    bid_saved_other_tender: "注意：这张回执属于另一个项目（{tender}）。",
    bid_incl_not_yet: "日志在投标截止时封存，封存后才能证明该回执在日志中。",
    bid_incl_ok: "包含证明有效：该回执是本项目已封存日志（{size} 条，封存于 {at}）中的第 {index} 条。",
    bid_incl_absent: "封存于 {at} 的日志中没有这张回执！",
    bid_incl_bad: "包含证明无效：它不能把这张回执放进日志（{size} 条）。",
    bid_incl_head_unsigned: "日志树头的签名不是平台公布的密钥签的。",
    bid_incl_other_tender: "日志树头属于另一个项目。",
    bid_reveal_title: "在线解密",
    bid_reveal_waiting: "解密时段尚未开始：开标程序公布投标清单后开始。本页每隔几秒自动查看。",
    bid_reveal_open: "解密时段开放至 {at}，剩余：",
    bid_reveal_closed: "解密时段已于 {at} 结束。",
    bid_reveal_failed_opening: "开标失败（有效投标不足），无需解密。",
    bid_reveal_no_bid: "您在本次开标中没有投标。",
    bid_reveal_text: "选择贵单位的身份文件（AGE-SECRET-KEY-1…）：本页用它从您投标的密封文件头中算出这份投标的 16 字节文件密钥，只把这个文件密钥发给平台。身份文件不会离开本浏览器。",
    bid_reveal_file: "身份文件",
    bid_reveal_submit: "解密我的投标",
    bid_reveal_wrong_identity: "这个身份文件打不开您的投标：请选择投标时所用密钥的身份文件。",
    bid_reveal_refused: "解密未成功：{reason}",
    bid_reveal_tries: "剩余尝试次数：{n}",
    bid_reveal_receipt_file: "投标回执文件",
    bid_reveal_receipt_kept: "平台发来的投标文件头将用本浏览器保存的第 {version} 版投标回执核对，核对一致才计算文件密钥。如需使用其他回执，请在此选择回执文件。",
    bid_reveal_receipt_none: "本浏览器没有保存这份投标的回执：请选择您提交投标时下载的回执文件（receipt-…-v版本号.json）。本页用它核对平台发来的投标文件头，核对一致才计算文件密钥。",
    bid_reveal_need_receipt: "请先选择投标回执文件。",
    bid_reveal_kept_withdrawn: "本浏览器保存的回执显示您已撤回第 {version} 版投标，没有可解密的投标；如不是这样，请选择投标回执文件。",
    bid_reveal_rx_refused: "这份回执不能用来核对投标：{problems}。本页没有计算文件密钥，也没有发送任何内容。",
    bid_reveal_rx_withdrawal: "这是撤回回执，不是投标回执",
    bid_reveal_rx_no_pin: "这份回执生成于回执记载文件头摘要（header_sha256）之前，无法核对平台发来的文件头；如接受不经核对即解密，请使用命令 bidding reveal --allow-old-receipt",
    bid_reveal_header_mismatch: "平台发来的投标文件头（SHA-256 {served}…）与您第 {version} 版投标回执记载的文件头（{pinned}…）不一致，已拒绝。本页没有计算文件密钥，也没有向平台发送任何内容。",
    bid_reveal_header_malformed: "平台发来的投标文件头格式不正确",
    bid_kept: "本浏览器保存了您提交时收到的第 {version} 版投标回执，解密时用它核对投标文件头。请另外下载保存一份：清除浏览器数据后它就不在了。",
    bid_kept_download: "下载保存的回执",
    bid_outcome_decrypted: "您的投标已解密：报价 {price}。",
    bid_outcome_rejected: "您的投标已解密，但被拒绝：{reason}",
    bid_outcome_withdrawn: "您的投标在解密时段内未被解密，按撤回处理。",
    bid_to_hall: "进入开标大厅观看",
    bid_keys_title: "我的解密密钥",
    bid_keys_intro: "投标人在线解密的项目，投标文件会加密给贵单位自己的密钥。密钥对在本浏览器中生成：身份文件（私钥）下载保存到您的电脑，绝不上传；平台只登记公钥（age1…）。",
    bid_keys_sign_in: "请先登录投标人账号。",
    bid_keys_current: "正在使用的密钥",
    bid_keys_none: "贵单位尚未登记密钥。",
    bid_keys_recipient: "公钥（age 接收者）",
    bid_keys_registered: "登记时间",
    bid_keys_verified: "验证",
    bid_keys_verified_at: "已于 {at} 验证",
    bid_keys_not_verified: "尚未验证",
    bid_keys_retired: "停用时间",
    bid_keys_history: "以前的密钥",
    bid_keys_generate_title: "生成新密钥",
    bid_keys_replace_warning: "新密钥登记后将替换正在使用的密钥。已加密给旧密钥的投标，解密时仍需旧的身份文件，请继续妥善保存。",
    bid_keys_generate: "生成密钥对",
    bid_keys_generated: "新密钥已在本浏览器中生成。",
    bid_keys_keep: "请下载并妥善保管身份文件：它能打开加密给这个密钥的投标；丢失后您将无法在开标时解密，平台也无法找回。不要把它发给任何人。",
    bid_keys_download: "下载身份文件",
    bid_keys_register: "登记此密钥",
    bid_keys_register_first: "请先下载身份文件，再登记。",
    bid_keys_registered_done: "密钥已登记。请用刚下载的身份文件完成密钥验证。",
    bid_keys_check_title: "验证密钥",
    bid_keys_check_text: "证明您手中的身份文件能打开加密给登记密钥的内容：平台加密一个随机值给该密钥，本页用您选择的身份文件解开并回答。",
    bid_keys_check_file: "身份文件",
    bid_keys_check: "验证密钥",
    bid_keys_check_other: "这个身份文件对应的公钥是 {mine}，而登记的是 {registered}。",
    bid_keys_check_failed: "验证失败：{reason}",
    bid_keys_check_ok: "密钥已验证：您的身份文件能打开加密给登记密钥的投标。",
    bid_failed: "操作失败：{reason}",
  },
  en: {
    bid_title: "Bid: {title}",
    bid_back: "Back to the tender",
    bid_sign_in_first: "Sign in with a bidder account to bid.",
    bid_sign_in_link: "Sign in to bid",
    bid_not_bidder: "Only bidder accounts can bid; you are signed in as: {role}.",
    bid_facts: "The tender",
    bid_mine: "Your bid",
    bid_none: "You have not bid for this tender yet.",
    bid_withdrawn_at: "You withdrew your bid on {at}; you may bid again before the deadline.",
    bid_version: "Version",
    bid_sha256: "SHA-256 (sealed file)",
    bid_size: "Size",
    bid_received: "Received",
    bid_status: "Status",
    bid_status_active: "Counts",
    bid_status_superseded: "Replaced",
    bid_status_withdrawn: "Withdrawn",
    bid_receipts: "Receipts",
    bid_kind: "Kind",
    bid_kind_bid: "Bid",
    bid_kind_withdrawal: "Withdrawal",
    bid_check: "Check",
    bid_check_ok: "Signature valid",
    bid_check_bad: "Failed: {problems}",
    bid_download: "Download",
    bid_download_named: "Download the {kind} receipt of version {version}",
    bid_form_title: "Seal and submit a bid",
    bid_replace_title: "Replace your bid (a new version)",
    bid_replaces: "Submitting replaces your current bid, version {version}: the last version counts.",
    bid_sealing_platform: "Your bid is encrypted (sealed) with age here, in this browser, to the tender's opening recipient; the platform opens it at the deadline. Only the sealed file is uploaded.",
    bid_sealing_bidder: "Bidders decrypt this tender online: your bid is sealed here, in this browser, to your organization's registered key{backup}. At the opening you reveal it with your identity file. Only the sealed file is uploaded.",
    bid_sealing_backup: " and to the tender's opening recipient (platform backup decryption)",
    bid_closed: "This tender does not take bids now ({status}).",
    bid_deadline_passed: "The bid deadline has passed: no more bids are taken.",
    bid_required_mark: " (required)",
    bid_hint_price: "Amount in {currency}, at most 2 decimals, no thousands separators; at most the ceiling price {ceiling}{floor}",
    bid_hint_floor: ", at least the floor price {floor}",
    bid_hint_decimal: "A number, with a decimal point if needed, such as 12.5",
    bid_hint_integer: "A whole number, such as 180",
    bid_hint_text: "Text, up to 10,000 characters",
    bid_hint_boolean: "Tick for yes",
    bid_hint_range: "Range: {range}",
    bid_hint_min: "at least {min}",
    bid_hint_max: "at most {max}",
    bid_err_required: "This field is required",
    bid_err_text_long: "At most {n} characters",
    bid_err_text_invalid: "Holds characters that are not valid text",
    bid_err_integer: "Write a whole number, such as 180",
    bid_err_integer_range: "A whole number within ±{n}",
    bid_err_money: "Write an amount in digits with a decimal point, such as 1234567.89, without separators or currency signs",
    bid_err_decimal: "Write a number such as 12.5, without separators",
    bid_err_cents: "An amount has at most 2 decimals",
    bid_err_positive: "The price must be greater than 0",
    bid_err_min: "Must be at least {min}",
    bid_err_max: "Must be at most {max}",
    bid_err_above_ceiling: "Above the ceiling price {ceiling}",
    bid_err_below_floor: "Below the floor price {floor}",
    bid_err_form_large: "The bid form is larger than 1 MiB",
    bid_err_name_empty: "the file has no name",
    bid_err_name_long: "the file name is longer than {n} characters",
    bid_err_name_control: "the file name holds control or direction characters",
    bid_err_name_character: "the file name holds a colon, slash or backslash",
    bid_fix_fields: "Correct the {n} marked field(s), then submit again. Nothing was uploaded.",
    bid_attachments: "Attach documents (optional)",
    bid_attachments_hint: "Technical proposal, certificates…: packed in a ZIP with the bid form, then sealed",
    bid_attached: "Attached documents",
    bid_no_attachments: "No documents: the bid form alone is sealed.",
    bid_remove: "Remove",
    bid_remove_named: "Remove {name}",
    bid_attach_refused: "{name}: {reason}",
    bid_attach_duplicate: "another document has the same name (ignoring case)",
    bid_attach_too_big: "a document may be at most 512 MiB",
    bid_attach_total: "the documents may be at most 1024 MiB in all",
    bid_attach_too_many: "at most {n} documents",
    bid_submit: "Seal and submit",
    bid_preparing: "Packing the bid…",
    bid_sealing: "Sealing (encrypting)…",
    bid_uploading: "Uploading the sealed file…",
    bid_progress: "{percent}% · {done} of {total}",
    bid_upload_failed: "The upload failed: {reason}",
    bid_retry: "Retry the upload",
    bid_retry_hint: "A retry sends the same sealed file with the same idempotency key: if the platform did receive it, it answers with the first receipt and makes no new version.",
    bid_seal_failed: "Sealing failed: {reason}",
    bid_refuse_status: "This tender does not take bids now ({status})",
    bid_refuse_deadline: "The bid deadline has passed (by the platform's clock)",
    bid_refuse_no_recipient: "The tender has no opening recipient to seal to",
    bid_refuse_no_key: "Bidders decrypt this tender online: first generate, register and check your organization's key on the My decryption key page.",
    bid_refuse_unverified: "Your organization's registered key is not checked yet. Check it with its identity file on the My decryption key page first, so that you can reveal your bid at the opening.",
    bid_refuse_identity_file: "This is not an age identity file: it holds no AGE-SECRET-KEY-1… line",
    bid_to_keys: "Go to My decryption key",
    bid_receipt_title: "Your receipt",
    bid_withdrawal_receipt_title: "Withdrawal receipt",
    bid_receipt_verified: "Receipt verified: the platform's signature is valid (key {key}), and it names this tender and the sealed file you sent (SHA-256 {sha256}, {size} bytes).",
    bid_withdrawal_verified: "Withdrawal receipt verified: the platform's signature is valid (key {key}) and it withdraws version {version}.",
    bid_receipt_failed: "The receipt did not verify: {problems}",
    bid_receipt_replayed: "The platform had received this upload already: this is its first receipt, and no new version was made.",
    bid_receipt_download: "Download the receipt",
    bid_leaf_hash: "Log leaf hash",
    bid_bid_id: "Bid id",
    bid_rx_not_object: "a receipt is a JSON object",
    bid_rx_no_body: "the receipt has no body",
    bid_rx_no_signature: "the receipt has no key_id and signature",
    bid_rx_unknown_key: "key {key} is not one of the platform's published keys",
    bid_rx_bad_signature: "the signature does not match the body: the receipt was altered",
    bid_rx_not_canonical: "the body is not canonical JSON",
    bid_rx_bad_leaf: "leaf_hash is not the RFC 6962 leaf hash of the body",
    bid_rx_mismatch: "the receipt says {name} {got}, not {value}",
    bid_rx_no_version: "the receipt has no version number",
    bid_withdraw: "Withdraw my bid",
    bid_withdraw_title: "Withdraw your bid?",
    bid_withdraw_text: "Version {version} of your bid will no longer count. You may still bid again before the deadline.",
    bid_withdraw_confirm: "Yes, withdraw",
    bid_withdraw_cancel: "Keep my bid",
    bid_withdraw_failed: "The withdrawal failed: {reason}",
    bid_saved_title: "Check a saved receipt",
    bid_saved_text: "Choose a receipt file you downloaded: this page checks its signature with the platform's published keys, and once the log is sealed at the deadline, that the receipt is in the tender's log.",
    bid_saved_file: "Receipt file",
    bid_saved_not_json: "This file is not a JSON receipt",
    bid_saved_ok: "Signature valid: a genuine {kind} receipt from the platform (version {version}, {at}).",
    bid_saved_other_tender: "Note: this receipt is of another tender ({tender}).",
    bid_incl_not_yet: "Not yet provable: the log is sealed at the deadline.",
    bid_incl_ok: "Inclusion proven: the receipt is leaf {index} of {size} in the tender's sealed log (sealed at {at}).",
    bid_incl_absent: "The log sealed at {at} does not hold this receipt!",
    bid_incl_bad: "The inclusion proof does not place this receipt in the log ({size} leaves).",
    bid_incl_head_unsigned: "The log's tree head is not signed by a published key.",
    bid_incl_other_tender: "The log's tree head is of another tender.",
    bid_reveal_title: "Reveal your bid",
    bid_reveal_waiting: "The decryption window is not open yet: it opens once the opening lists the bids. This page looks again every few seconds.",
    bid_reveal_open: "The decryption window is open until {at}. Time left: ",
    bid_reveal_closed: "The decryption window closed at {at}.",
    bid_reveal_failed_opening: "The opening failed (too few bids): there is nothing to reveal.",
    bid_reveal_no_bid: "You have no bid in this opening.",
    bid_reveal_text: "Choose your organization's identity file (AGE-SECRET-KEY-1…): this page computes your bid's 16-byte file key from the sealed file's header and sends that key only. The identity file never leaves this browser.",
    bid_reveal_file: "Identity file",
    bid_reveal_submit: "Reveal my bid",
    bid_reveal_wrong_identity: "This identity file does not open your bid: choose the identity of the key your bid was sealed to.",
    bid_reveal_refused: "The bid was not revealed: {reason}",
    bid_reveal_tries: "Tries left: {n}",
    bid_reveal_receipt_file: "Receipt file",
    bid_reveal_receipt_kept: "The bid header the platform sends is checked against the receipt of version {version} kept in this browser; the file key is computed only if they match. To use another receipt, choose its file here.",
    bid_reveal_receipt_none: "This browser kept no receipt of this bid: choose the receipt file you downloaded when you submitted it (receipt-…-v<version>.json). The page checks the bid header the platform sends against it and computes the file key only if they match.",
    bid_reveal_need_receipt: "Choose your bid's receipt file first.",
    bid_reveal_kept_withdrawn: "The receipts kept in this browser show that you withdrew version {version}: there is no bid to reveal. If that is not so, choose your bid's receipt file.",
    bid_reveal_rx_refused: "This receipt cannot vouch for your bid: {problems}. The page computed no file key and sent nothing.",
    bid_reveal_rx_withdrawal: "it is the receipt of a withdrawal, not of a bid",
    bid_reveal_rx_no_pin: "it was made before receipts named the bid's header (header_sha256), so the header the platform sends cannot be checked against it; to reveal without that check, use bidding reveal --allow-old-receipt",
    bid_reveal_header_mismatch: "the platform sent a bid header (SHA-256 {served}…) that is not the one your receipt of version {version} pins ({pinned}…), so it was refused. The page computed no file key and sent nothing.",
    bid_reveal_header_malformed: "the bid header the platform sent is malformed",
    bid_kept: "This browser keeps the receipt of version {version} your submission was given: the reveal checks your bid's header against it. Download a copy too: clearing the browser's data forgets it.",
    bid_kept_download: "Download the kept receipt",
    bid_outcome_decrypted: "Your bid is decrypted: price {price}.",
    bid_outcome_rejected: "Your bid was decrypted but refused: {reason}",
    bid_outcome_withdrawn: "Your bid was not decrypted in the window and counts as withdrawn.",
    bid_to_hall: "Watch in the opening hall",
    bid_keys_title: "My decryption key",
    bid_keys_intro: "For tenders that bidders decrypt online, bids are sealed to your organization's own key. The key pair is made here, in this browser: the identity (secret key) is downloaded to your computer and never uploaded; the platform registers only the recipient (age1…).",
    bid_keys_sign_in: "Sign in with a bidder account first.",
    bid_keys_current: "Key in use",
    bid_keys_none: "Your organization has registered no key yet.",
    bid_keys_recipient: "Recipient (public key)",
    bid_keys_registered: "Registered",
    bid_keys_verified: "Check",
    bid_keys_verified_at: "Verified on {at}",
    bid_keys_not_verified: "Not verified yet",
    bid_keys_retired: "Retired",
    bid_keys_history: "Earlier keys",
    bid_keys_generate_title: "Generate a new key",
    bid_keys_replace_warning: "A new key replaces the one in use once registered. Bids already sealed to the old key still need the old identity file to be revealed: keep it.",
    bid_keys_generate: "Generate a key pair",
    bid_keys_generated: "A new key was generated in this browser.",
    bid_keys_keep: "Download the identity file and keep it safe and secret: it opens the bids sealed to this key. Lose it and you cannot reveal your bids at the opening; the platform cannot recover it. Never send it to anyone.",
    bid_keys_download: "Download the identity file",
    bid_keys_register: "Register this key",
    bid_keys_register_first: "Download the identity file first, then register.",
    bid_keys_registered_done: "The key is registered. Now check it with the identity file you downloaded.",
    bid_keys_check_title: "Check the key",
    bid_keys_check_text: "Prove that your identity file opens what is sealed to the registered key: the platform seals a random value to it, and this page opens it with the file you choose and answers.",
    bid_keys_check_file: "Identity file",
    bid_keys_check: "Check the key",
    bid_keys_check_other: "This identity file's recipient is {mine}, but the registered one is {registered}.",
    bid_keys_check_failed: "The check failed: {reason}",
    bid_keys_check_ok: "Key verified: your identity file opens what is sealed to the registered key.",
    bid_failed: "That did not work: {reason}",
  },
});

const RETRIED_STATUSES = new Set([0, 408, 429, 500, 502, 503, 504]);
const POLL_MS = 3000;

/** A size in bytes for a reader: 512 B, 12.3 KB, 4.5 MB (1 KB = 1024 bytes). */
function size(count) {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KB`;
  if (count < 1024 * 1024 * 1024) return `${(count / 1024 / 1024).toFixed(1)} MB`;
  return `${(count / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

/** Replace a node's children, leaving out the absent ones (replaceChildren writes "null"). */
function put(node, ...children) {
  node.replaceChildren(...children.filter((child) => child !== null && child !== undefined && child !== false));
}

function grouped(count) {
  return String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Problems ([key, values] pairs) in words, joined. */
function words(problems) {
  return problems.map(([key, values]) => t(key, values)).join("; ");
}

function errorText(error) {
  if (error instanceof sealing.SealingRefused) return t(error.key, error.values);
  return error?.message || String(error);
}

/** The platform's published signing keys, fetched once per page. */
function keyCache() {
  let keys = null;
  return async () => {
    keys ??= sealing.publishedKeys(await api("/keys"));
    return keys;
  };
}

// The receipts the platform gave at submission, kept in this browser by tender and organization.
// A reveal checks the header it is served against them, never against the receipts that
// GET …/bids/mine serves later: a compromised platform holds the signing key and could sign
// a receipt for another bid's header (README.md, online decryption).
function keptKey(tenderId, organizationId) {
  return `bidding.receipts.${organizationId}.${tenderId}`;
}

function keptReceipts(tenderId, organizationId) {
  try {
    const list = JSON.parse(localStorage.getItem(keptKey(tenderId, organizationId)) ?? "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function keepReceipt(tenderId, organizationId, receipt) {
  if (!organizationId) return;
  const list = keptReceipts(tenderId, organizationId).filter((kept) => kept?.leaf_hash !== receipt.leaf_hash);
  list.push(receipt);
  try {
    localStorage.setItem(keptKey(tenderId, organizationId), JSON.stringify(list));
  } catch {
    // storage full or turned off: the receipt can still be downloaded and chosen at the reveal
  }
}

/**
 * The newest bid receipt kept for the tender, by version (client.newest_receipt):
 * {receipt}, with `withdrawn` (a version) when a kept withdrawal receipt ends it; {} if none.
 */
function newestKept(tenderId, organizationId) {
  const list = keptReceipts(tenderId, organizationId);
  const bids = list.filter((kept) => kept?.body?.kind === "bid" && Number.isInteger(kept.body.version));
  if (!bids.length) return {};
  const receipt = bids.reduce((newest, kept) => (kept.body.version > newest.body.version ? kept : newest));
  const withdrawal = list.find((kept) => kept?.body?.kind === "withdrawal" && kept.body.version >= receipt.body.version);
  return withdrawal ? { receipt, withdrawn: withdrawal.body.version } : { receipt };
}

/** The way to the page of the organization's key, where a refusal to seal is put right. */
function keysLink() {
  return h("a", { href: "#/keys" }, t("bid_to_keys"));
}

function signInFirst(main, next, text) {
  main.replaceChildren(
    notice(text),
    h("p", {}, h("a", { class: "button", href: `#/sign-in?next=${next}` }, t("bid_sign_in_link"))),
  );
}

function notBidder(main, user) {
  main.replaceChildren(notice(t("bid_not_bidder", { role: t(`role_${user.role}`) }), "error"));
}

/** Does the proof hold that a genuine receipt is in its tender's sealed log (client.check_inclusion). */
async function checkInclusion(receipt, keys) {
  const tenderId = receipt.body.tender_id;
  let signed;
  try {
    signed = await api(`/tenders/${tenderId}/log/head`);
  } catch (error) {
    if (error.status === 404 || error.status === 409) return { proven: null, text: t("bid_incl_not_yet") };
    throw error;
  }
  const head = signed?.tree_head ?? {};
  if (!sealing.signatureValid(head, signed?.key_id, signed?.signature, keys)) {
    return { proven: false, text: t("bid_incl_head_unsigned") };
  }
  if (head.tender_id !== tenderId) return { proven: false, text: t("bid_incl_other_tender") };
  let answer;
  try {
    answer = await api(`/tenders/${tenderId}/log/proof?leaf_hash=${encodeURIComponent(receipt.leaf_hash)}`);
  } catch (error) {
    if (error.status === 404) return { proven: false, text: t("bid_incl_absent", { at: when(head.sealed_at) }) };
    if (error.status === 409) return { proven: null, text: t("bid_incl_not_yet") };
    throw error;
  }
  const proven =
    answer.tree_size === head.tree_size &&
    sealing.verifyInclusion({
      leaf: receipt.leaf_hash,
      index: answer.leaf_index,
      treeSize: head.tree_size,
      proof: answer.proof ?? [],
      root: head.root_hash,
    });
  if (!proven) return { proven: false, text: t("bid_incl_bad", { size: head.tree_size }) };
  return {
    proven: true,
    text: t("bid_incl_ok", { index: answer.leaf_index + 1, size: head.tree_size, at: when(head.sealed_at) }),
  };
}

// --- the bid page --------------------------------------------------------------------------

async function showBid({ main, params, user }) {
  const tenderId = params[0];
  if (!user) return signInFirst(main, `/tenders/${tenderId}/bid`, t("bid_sign_in_first"));
  if (user.role !== "bidder") return notBidder(main, user);
  let tender = await loadTender(tenderId);
  const keys = keyCache();
  const stops = new Set();
  let busy = false; // sealing or uploading: the page is not redrawn under the bidder's hands
  let left = false;

  const every = (ms, action) => {
    const timer = setInterval(action, ms);
    const stop = () => clearInterval(timer);
    stops.add(stop);
    return stop;
  };

  const mineBox = h("section", { class: "card", "aria-labelledby": "bid-mine-title" });
  const receiptBox = h("div", { "aria-live": "polite" });
  const formBox = h("section", { class: "card", "aria-labelledby": "bid-form-title" });
  const revealBox = h("section", { class: "card", "aria-labelledby": "bid-reveal-title" });
  const dialogs = [];
  let mine = { bid: null, receipts: [] };
  const organization = user.organization?.id;

  // -- the receipt of an upload or a withdrawal --

  async function showReceipt(receipt, { replayed = false, expected }) {
    let problems;
    try {
      problems = sealing.checkReceipt(receipt, await keys(), expected);
    } catch (error) {
      problems = [["bid_failed", { reason: errorText(error) }]];
    }
    // Only a receipt that checks out may vouch for a header at the reveal.
    if (!problems.length) keepReceipt(tender.id, organization, receipt);
    const body = receipt?.body ?? {};
    const withdrawal = expected.kind === "withdrawal";
    const verdict = problems.length
      ? notice(t("bid_receipt_failed", { problems: words(problems) }), "error")
      : notice(
          withdrawal
            ? t("bid_withdrawal_verified", { key: receipt.key_id, version: body.version })
            : t("bid_receipt_verified", { key: receipt.key_id, sha256: body.sha256, size: grouped(body.size) }),
          "ok",
        );
    const rows = [
      ["bid_kind", t(`bid_kind_${body.kind}`)],
      ["bid_version", String(body.version)],
      ["bid_received", when(body.received_at)],
      ["bid_sha256", h("code", {}, String(body.sha256))],
      ["bid_size", `${grouped(body.size)} B`],
      ["bid_bid_id", h("code", {}, String(body.bid_id))],
      ["bid_leaf_hash", h("code", {}, String(receipt?.leaf_hash))],
    ];
    receiptBox.replaceChildren(
      h(
        "section",
        { class: "card receipt", "aria-labelledby": "bid-receipt-title" },
        h("h3", { id: "bid-receipt-title" }, t(withdrawal ? "bid_withdrawal_receipt_title" : "bid_receipt_title")),
        verdict,
        replayed ? notice(t("bid_receipt_replayed")) : null,
        h("dl", { class: "receipt" }, ...rows.flatMap(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)])),
        h(
          "button",
          {
            type: "button",
            onclick: () =>
              download(sealing.receiptFilename(tender.id, receipt), sealing.receiptFileText(receipt), "application/json"),
          },
          t("bid_receipt_download"),
        ),
      ),
    );
  }

  // -- the current bid and its receipts --

  function takesBids() {
    return tender.status === "published" && serverNow() < Date.parse(tender.bid_deadline);
  }

  async function refreshMine() {
    mine = await api(`/tenders/${tender.id}/bids/mine`);
    let published = null;
    try {
      published = await keys();
    } catch {
      published = null; // the receipts are still shown, unchecked
    }
    const { bid, receipts } = mine;
    const parts = [h("h3", { id: "bid-mine-title" }, t("bid_mine"))];
    if (bid) {
      const rows = [
        ["bid_version", String(bid.version)],
        ["bid_sha256", h("code", {}, bid.sha256)],
        ["bid_size", bid.size < 1024 ? `${bid.size} B` : `${size(bid.size)} (${grouped(bid.size)} B)`],
        ["bid_received", when(bid.received_at)],
        ["bid_status", t(`bid_status_${bid.status}`)],
      ];
      parts.push(h("dl", { class: "current" }, ...rows.flatMap(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)])));
      if (takesBids()) {
        parts.push(h("div", { class: "actions" }, h("button", { type: "button", class: "danger", onclick: () => confirmWithdrawal(bid) }, t("bid_withdraw"))));
      }
    } else {
      const last = receipts[receipts.length - 1];
      parts.push(
        h("p", {}, last?.body?.kind === "withdrawal" ? t("bid_withdrawn_at", { at: when(last.body.received_at) }) : t("bid_none")),
      );
    }
    if (receipts.length) {
      const rows = receipts.map((receipt) => {
        const body = receipt.body ?? {};
        const problems = published ? sealing.receiptProblems(receipt, published) : [["bid_failed", { reason: "GET /keys" }]];
        if (!problems.length && body.tender_id !== tender.id) {
          problems.push(["bid_rx_mismatch", { name: "tender_id", got: body.tender_id, value: tender.id }]);
        }
        const kind = t(`bid_kind_${body.kind}`);
        return h(
          "tr",
          {},
          h("td", {}, kind),
          h("td", { class: "number" }, String(body.version)),
          h("td", {}, when(body.received_at)),
          h("td", { class: "optional" }, h("code", {}, String(body.sha256).slice(0, 16) + "…")),
          h(
            "td",
            { class: `check ${problems.length ? "bad" : "ok"}` },
            problems.length ? t("bid_check_bad", { problems: words(problems) }) : `✓ ${t("bid_check_ok")}`,
          ),
          h(
            "td",
            {},
            h(
              "button",
              {
                type: "button",
                class: "secondary",
                "aria-label": t("bid_download_named", { kind, version: body.version }),
                onclick: () =>
                  download(sealing.receiptFilename(tender.id, receipt), sealing.receiptFileText(receipt), "application/json"),
              },
              t("bid_download"),
            ),
          ),
        );
      });
      parts.push(
        h("h4", {}, t("bid_receipts")),
        h(
          "div",
          { class: "table-scroll" },
          h(
            "table",
            { class: "receipts" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, t("bid_kind")),
                h("th", { scope: "col", class: "number" }, t("bid_version")),
                h("th", { scope: "col" }, t("bid_received")),
                h("th", { scope: "col", class: "optional" }, "SHA-256"),
                h("th", { scope: "col" }, t("bid_check")),
                h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("bid_download"))),
              ),
            ),
            h("tbody", {}, ...rows),
          ),
        ),
      );
    }
    const kept = newestKept(tender.id, organization).receipt;
    if (kept) {
      parts.push(
        h(
          "p",
          { class: "kept" },
          t("bid_kept", { version: kept.body.version }),
          " ",
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              onclick: () => download(sealing.receiptFilename(tender.id, kept), sealing.receiptFileText(kept), "application/json"),
            },
            t("bid_kept_download"),
          ),
        ),
      );
    }
    mineBox.replaceChildren(...parts);
    drawFormHeading();
  }

  // -- withdrawing, with a confirmation step --

  function confirmWithdrawal(bid) {
    const message = h("div", { "aria-live": "assertive" });
    const cancel = h("button", { type: "button", class: "secondary" }, t("bid_withdraw_cancel"));
    const confirm = h("button", { type: "button", class: "danger" }, t("bid_withdraw_confirm"));
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "bid-withdraw-title", "aria-describedby": "bid-withdraw-text" },
      h("h3", { id: "bid-withdraw-title" }, t("bid_withdraw_title")),
      h("p", { id: "bid-withdraw-text" }, t("bid_withdraw_text", { version: bid.version })),
      message,
      h("div", { class: "actions" }, confirm, cancel),
    );
    const close = () => {
      dialog.close();
      dialog.remove();
    };
    cancel.addEventListener("click", close);
    dialog.addEventListener("close", () => dialog.remove());
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      cancel.disabled = true;
      try {
        const receipt = await api(`/tenders/${tender.id}/bids/mine`, { method: "DELETE" });
        close();
        await showReceipt(receipt, {
          expected: { kind: "withdrawal", tender_id: tender.id, sha256: bid.sha256, size: bid.size },
        });
        await refreshMine();
        receiptBox.querySelector("h3")?.setAttribute("tabindex", "-1");
        receiptBox.querySelector("h3")?.focus();
      } catch (error) {
        message.replaceChildren(notice(t("bid_withdraw_failed", { reason: errorText(error) }), "error"));
        confirm.disabled = false;
        cancel.disabled = false;
      }
    });
    dialogs.push(dialog);
    main.append(dialog);
    dialog.showModal();
    cancel.focus(); // the safe choice has the focus; Escape closes too
  }

  // -- the bid form --

  const formHeading = h("h3", { id: "bid-form-title" });
  const replaceNote = h("p", { class: "lead" });

  function drawFormHeading() {
    formHeading.textContent = t(mine.bid ? "bid_replace_title" : "bid_form_title");
    replaceNote.textContent = mine.bid ? t("bid_replaces", { version: mine.bid.version }) : "";
    replaceNote.hidden = !mine.bid;
  }

  function problemText([key, values]) {
    const shown = { ...values };
    if (shown.ceiling !== undefined) shown.ceiling = money(shown.ceiling, tender.currency);
    if (shown.floor !== undefined) shown.floor = money(shown.floor, tender.currency);
    return t(key, shown);
  }

  function hintFor(rule) {
    if (rule.name === sealing.PRICE_FIELD) {
      return t("bid_hint_price", {
        currency: tender.currency,
        ceiling: money(tender.ceiling_price, tender.currency),
        floor: tender.floor_price ? t("bid_hint_floor", { floor: money(tender.floor_price, tender.currency) }) : "",
      });
    }
    const base = t(`bid_hint_${rule.kind}`);
    const bounds = [
      rule.min !== null ? t("bid_hint_min", { min: rule.min }) : null,
      rule.max !== null ? t("bid_hint_max", { max: rule.max }) : null,
    ].filter(Boolean);
    return bounds.length ? `${base}. ${t("bid_hint_range", { range: bounds.join(", ") })}` : base;
  }

  function drawForm() {
    if (!takesBids()) {
      const closed =
        tender.status === "published" ? t("bid_deadline_passed") : t("bid_closed", { status: t(`status_${tender.status}`) });
      formBox.replaceChildren(h("h3", { id: "bid-form-title" }, t("bid_form_title")), notice(closed));
      return;
    }
    const rules = sealing.formRules(tender.bid_fields);
    const controls = new Map();
    const fields = rules.map((rule) => {
      const id = `bid-field-${rule.name}`;
      let control;
      if (rule.kind === "boolean") {
        control = h("input", { type: "checkbox", id, name: rule.name });
      } else if (rule.kind === "text") {
        control = h("textarea", { id, name: rule.name, maxlength: sealing.MAX_TEXT_CHARS, rows: 3 });
      } else {
        control = h("input", {
          type: "text",
          id,
          name: rule.name,
          inputmode: rule.kind === "integer" ? "numeric" : "decimal",
          autocomplete: "off",
          spellcheck: "false",
        });
      }
      if (rule.required && rule.kind !== "boolean") control.setAttribute("aria-required", "true");
      const label =
        rule.name === sealing.PRICE_FIELD ? `${rule.label} (${tender.currency})` : rule.label;
      const required = rule.required && rule.kind !== "boolean" ? t("bid_required_mark") : "";
      const wrapper = field(`${label}${required}`, control, hintFor(rule));
      const error = h("p", { id: `${id}-error`, class: "field-error", hidden: true });
      wrapper.append(error);
      if (rule.kind === "boolean") {
        wrapper.classList.add("inline");
        wrapper.prepend(control);
      }
      controls.set(rule.name, { rule, control, error });
      return wrapper;
    });

    // Documents: kept as File objects until sealing; they are read only to be sealed.
    const documents = [];
    const picker = h("input", { type: "file", multiple: true, id: "bid-attachments" });
    const listing = h("ul", { class: "attachments", "aria-label": t("bid_attached") });
    const attachMessage = h("div", { "aria-live": "polite" });
    const drawDocuments = () => {
      listing.replaceChildren(
        ...(documents.length
          ? documents.map((file, index) =>
              h(
                "li",
                {},
                h("span", { class: "name" }, file.name),
                h("span", { class: "size" }, size(file.size)),
                h(
                  "button",
                  {
                    type: "button",
                    class: "secondary",
                    "aria-label": t("bid_remove_named", { name: file.name }),
                    onclick: () => {
                      documents.splice(index, 1);
                      attachMessage.replaceChildren();
                      drawDocuments();
                      picker.focus();
                    },
                  },
                  t("bid_remove"),
                ),
              ),
            )
          : [h("li", { class: "empty" }, t("bid_no_attachments"))]),
      );
    };
    picker.addEventListener("change", () => {
      const refused = [];
      for (const file of picker.files) {
        const taken = new Set(documents.flatMap((d) => sealing.foldedNames(d.name)));
        const total = documents.reduce((sum, d) => sum + d.size, 0);
        const problem =
          sealing.attachmentNameProblem(file.name) ??
          (sealing.foldedNames(file.name).some((name) => taken.has(name)) ? ["bid_attach_duplicate", {}] : null) ??
          (file.size > sealing.MAX_DOCUMENT_BYTES ? ["bid_attach_too_big", {}] : null) ??
          (total + file.size > sealing.MAX_TOTAL_BYTES ? ["bid_attach_total", {}] : null) ??
          (documents.length + 1 >= sealing.MAX_ENTRIES ? ["bid_attach_too_many", { n: sealing.MAX_ENTRIES - 1 }] : null);
        if (problem) refused.push(t("bid_attach_refused", { name: file.name, reason: t(...problem) }));
        else documents.push(file);
      }
      picker.value = ""; // the same file may be chosen again after removing it
      attachMessage.replaceChildren(...refused.map((text) => notice(text, "error")));
      drawDocuments();
    });
    drawDocuments();

    const submit = h("button", { type: "submit" }, t("bid_submit"));
    const retry = h("button", { type: "button", hidden: true }, t("bid_retry"));
    const retryHint = h("small", { id: "bid-retry-hint", hidden: true }, t("bid_retry_hint"));
    retry.setAttribute("aria-describedby", retryHint.id);
    const stage = h("span", { id: "bid-progress-label" });
    const bar = h("progress", { max: 100, value: 0, "aria-labelledby": "bid-progress-label" });
    const amount = h("output", { for: "bid-progress-label" });
    const transfer = h("div", { class: "transfer", hidden: true }, stage, bar, amount);
    const message = h("div", { "aria-live": "assertive" });
    let pending = null; // a sealed file whose upload failed: {sealed, key}

    const progress = (label) => (done, total) => {
      const percent = total ? Math.floor((done / total) * 100) : 0;
      stage.textContent = label;
      bar.value = percent;
      amount.textContent = t("bid_progress", { percent, done: size(done), total: size(total) });
    };

    const markFields = (problems) => {
      for (const { rule, control, error } of controls.values()) {
        const problem = problems[rule.name];
        const hint = `${control.id}-hint`;
        if (problem) {
          error.textContent = problemText(problem);
          error.hidden = false;
          control.setAttribute("aria-invalid", "true");
          control.setAttribute("aria-describedby", `${error.id} ${hint}`);
        } else {
          error.textContent = "";
          error.hidden = true;
          control.removeAttribute("aria-invalid");
          control.setAttribute("aria-describedby", hint);
        }
      }
    };

    const send = async () => {
      const { sealed, key } = pending;
      retry.hidden = true;
      retryHint.hidden = true;
      busy = true;
      submit.disabled = true;
      transfer.hidden = false;
      const uploading = progress(t("bid_uploading"));
      uploading(0, sealed.size);
      try {
        const answer = await upload(`/tenders/${tender.id}/bids`, sealed.bytes, {
          headers: { "Idempotency-Key": key, "Content-Type": "application/octet-stream" },
          onProgress: uploading,
        });
        pending = null;
        transfer.hidden = true;
        await showReceipt(answer.body, {
          replayed: answer.status === 200,
          expected: {
            kind: "bid",
            tender_id: tender.id,
            sha256: sealed.sha256,
            size: sealed.size,
            header_sha256: sealed.headerSha256,
          },
        });
        await refreshMine().catch(() => null);
        receiptBox.querySelector("h3")?.setAttribute("tabindex", "-1");
        receiptBox.querySelector("h3")?.focus();
      } catch (error) {
        const retried = error instanceof ApiError && (RETRIED_STATUSES.has(error.status) || error.type === "upload_interrupted");
        message.replaceChildren(notice(t("bid_upload_failed", { reason: errorText(error) }), "error"));
        if (retried) {
          retry.hidden = false;
          retryHint.hidden = false;
          retry.focus();
        } else {
          pending = null;
          transfer.hidden = true;
        }
      } finally {
        busy = false;
        submit.disabled = false;
      }
    };
    retry.addEventListener("click", () => {
      if (pending && !busy) send();
    });

    const form = h(
      "form",
      { class: "bid-form", novalidate: true },
      ...fields,
      field(t("bid_attachments"), picker, t("bid_attachments_hint")),
      listing,
      attachMessage,
      h("div", { class: "actions" }, submit, retry),
      retryHint,
      transfer,
      message,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (busy) return;
      message.replaceChildren();
      const raws = {};
      for (const { rule, control } of controls.values()) {
        raws[rule.name] = rule.kind === "boolean" ? control.checked : control.value;
      }
      const { form: values, problems } = sealing.readForm(rules, raws, {
        ceiling: tender.ceiling_price,
        floor: tender.floor_price,
      });
      markFields(problems);
      const wrong = Object.keys(problems);
      if (wrong.length) {
        message.replaceChildren(notice(t("bid_fix_fields", { n: wrong.length }), "error"));
        controls.get(wrong[0]).control.focus();
        return;
      }
      busy = true;
      submit.disabled = true;
      retry.hidden = true;
      retryHint.hidden = true;
      pending = null;
      try {
        let own = null;
        if (tender.opening_mode === "bidder") {
          const current = (await api("/me/keys")).current;
          if (!current) throw new sealing.SealingRefused("bid_refuse_no_key");
          if (!current.verified_at) throw new sealing.SealingRefused("bid_refuse_unverified");
          own = current.recipient;
        }
        const recipients = sealing.sealingRecipients(tender, own, serverNow());
        transfer.hidden = false;
        progress(t("bid_preparing"))(0, 1);
        // Let the page paint the stage before the archive is built.
        await new Promise((resolve) => setTimeout(resolve, 30));
        const read = await Promise.all(
          documents.map(async (file) => ({ name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) })),
        );
        const plaintext = new Blob([sealing.buildPlaintext(values, read)]);
        const sealed = await sealing.seal(plaintext, recipients, progress(t("bid_sealing")));
        pending = { sealed, key: sealing.idempotencyKey() };
      } catch (error) {
        busy = false;
        submit.disabled = false;
        transfer.hidden = true;
        const refusal = error instanceof sealing.SealingRefused;
        const text = refusal
          ? t(error.key, { ...error.values, status: t(`status_${error.values.status ?? tender.status}`) })
          : t("bid_seal_failed", { reason: errorText(error) });
        const keyProblem = refusal && ["bid_refuse_no_key", "bid_refuse_unverified"].includes(error.key);
        put(message, notice(text, "error"), keyProblem ? h("p", {}, keysLink()) : null);
        return;
      }
      await send();
    });

    const sealingNote =
      tender.opening_mode === "bidder"
        ? t("bid_sealing_bidder", { backup: tender.backup_decryption ? t("bid_sealing_backup") : "" })
        : t("bid_sealing_platform");
    formBox.replaceChildren(formHeading, replaceNote, h("p", { class: "lead" }, sealingNote), form);
    drawFormHeading();
  }

  // -- checking a saved receipt --

  function savedReceiptBox() {
    const picker = h("input", { type: "file", accept: ".json,application/json", id: "bid-saved-receipt" });
    const result = h("div", { "aria-live": "polite" });
    picker.addEventListener("change", async () => {
      const file = picker.files[0];
      if (!file) return;
      result.replaceChildren(h("p", {}, t("loading")));
      let receipt;
      try {
        const text = await file.text();
        picker.value = ""; // the same file may be checked again later, once the log is sealed
        receipt = JSON.parse(text);
      } catch {
        result.replaceChildren(notice(t("bid_saved_not_json"), "error"));
        return;
      }
      try {
        const published = await keys();
        const problems = sealing.receiptProblems(receipt, published);
        if (problems.length) {
          result.replaceChildren(notice(t("bid_receipt_failed", { problems: words(problems) }), "error"));
          return;
        }
        const body = receipt.body;
        const lines = [
          notice(
            t("bid_saved_ok", {
              kind: t(`bid_kind_${body.kind}`).toLowerCase(),
              version: body.version,
              at: when(body.received_at),
            }),
            "ok",
          ),
        ];
        if (body.tender_id !== tender.id) lines.push(notice(t("bid_saved_other_tender", { tender: body.tender_id })));
        result.replaceChildren(...lines);
        const inclusion = await checkInclusion(receipt, published);
        lines.push(notice(inclusion.text, inclusion.proven === true ? "ok" : inclusion.proven === false ? "error" : "info"));
        result.replaceChildren(...lines);
      } catch (error) {
        result.replaceChildren(notice(t("bid_failed", { reason: errorText(error) }), "error"));
      }
    });
    return h(
      "section",
      { class: "card", "aria-labelledby": "bid-saved-title" },
      h("h3", { id: "bid-saved-title" }, t("bid_saved_title")),
      h("p", { class: "lead" }, t("bid_saved_text")),
      field(t("bid_saved_file"), picker),
      result,
    );
  }

  // -- revealing the bid in the decryption window (bidder mode) --

  async function openingEvents() {
    const events = [];
    let after = 0;
    for (;;) {
      const page = await api(`/tenders/${tender.id}/opening/events?after=${after}`);
      events.push(...page.events);
      if (!page.has_more) return events;
      after = page.next_after;
    }
  }

  function outcomeNotice(event) {
    const data = event.data ?? {};
    if (event.type === "bid.decrypted") {
      return notice(t("bid_outcome_decrypted", { price: money(data.price, tender.currency) }), "ok");
    }
    if (event.type === "bid.rejected") {
      return notice(t("bid_outcome_rejected", { reason: data.detail || data.reason }), "error");
    }
    return notice(t("bid_outcome_withdrawn"), "error");
  }

  let stopRevealPoll = null;
  let stopWindowClock = null;

  async function drawReveal() {
    stopRevealPoll?.();
    stopRevealPoll = null;
    stopWindowClock?.();
    stopWindowClock = null;
    const title = h("h3", { id: "bid-reveal-title" }, t("bid_reveal_title"));
    const hall = h("p", {}, h("a", { href: `#/tenders/${tender.id}/hall` }, t("bid_to_hall")));
    let events;
    try {
      events = await openingEvents();
    } catch (error) {
      const text = error.status === 403 ? t("bid_reveal_no_bid") : t("bid_failed", { reason: errorText(error) });
      revealBox.replaceChildren(title, notice(text, error.status === 403 ? "info" : "error"));
      return;
    }
    const opened = events.find((e) => e.type === "decryption.window_opened");
    const closed = events.find((e) => e.type === "decryption.window_closed");
    const decided = events.find(
      (e) => ["bid.decrypted", "bid.rejected", "bid.withdrawn"].includes(e.type) && e.data?.bidder_id === organization,
    );
    const listed = events.find((e) => e.type === "bids.listed");
    const failed = events.find((e) => e.type === "opening.failed");
    if (decided) {
      revealBox.replaceChildren(title, h("div", { class: "outcome" }, outcomeNotice(decided)), hall);
      return;
    }
    if (failed) {
      revealBox.replaceChildren(title, notice(t("bid_reveal_failed_opening")), hall);
      return;
    }
    if (listed && !(listed.data?.bids ?? []).some((b) => b.bidder_id === organization)) {
      revealBox.replaceChildren(title, notice(t("bid_reveal_no_bid")), hall);
      return;
    }
    if (!opened) {
      revealBox.replaceChildren(title, notice(t("bid_reveal_waiting")), hall);
      stopRevealPoll = every(POLL_MS, () => {
        if (!left) drawReveal().catch(() => null);
      });
      return;
    }
    const closesAt = opened.data?.closes_at;
    if (closed || serverNow() >= Date.parse(closesAt)) {
      revealBox.replaceChildren(title, notice(t("bid_reveal_closed", { at: when(closesAt) })), hall);
      return;
    }
    const [clock, stopClock] = countdown(closesAt);
    stopWindowClock = stopClock;
    stops.add(stopClock);
    const picker = h("input", { type: "file", id: "bid-reveal-identity", accept: ".txt,.key,text/plain" });
    const receiptPicker = h("input", { type: "file", id: "bid-reveal-receipt", accept: ".json,application/json" });
    const kept = newestKept(tender.id, organization);
    const receiptHint = kept.receipt
      ? t("bid_reveal_receipt_kept", { version: kept.receipt.body.version })
      : t("bid_reveal_receipt_none");
    const button = h("button", { type: "submit" }, t("bid_reveal_submit"));
    const message = h("div", { "aria-live": "assertive" });
    const form = h(
      "form",
      { class: "reveal" },
      field(t("bid_reveal_file"), picker),
      field(t("bid_reveal_receipt_file"), receiptPicker, receiptHint),
      h("div", { class: "actions" }, button),
      message,
    );
    /** The bidder's own receipt of the bid: the file chosen, else the one kept here. */
    const ownReceipt = async () => {
      const chosen = receiptPicker.files[0];
      if (chosen) {
        try {
          return JSON.parse(await chosen.text());
        } catch {
          throw new sealing.SealingRefused("bid_saved_not_json");
        }
      }
      if (kept.withdrawn !== undefined) throw new sealing.SealingRefused("bid_reveal_kept_withdrawn", { version: kept.withdrawn });
      if (!kept.receipt) {
        receiptPicker.focus();
        throw new sealing.SealingRefused("bid_reveal_need_receipt");
      }
      return kept.receipt;
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      message.replaceChildren();
      const file = picker.files[0];
      if (!file) {
        message.replaceChildren(notice(t("bid_refuse_identity_file"), "error"));
        picker.focus();
        return;
      }
      button.disabled = true;
      try {
        const identity = sealing.identityFromText(await file.text());
        const receipt = await ownReceipt();
        const pin = sealing.pinnedHeader(receipt, await keys(), tender.id);
        if (pin.problems) throw new sealing.SealingRefused("bid_reveal_rx_refused", { problems: words(pin.problems) });
        const { header } = await api(`/tenders/${tender.id}/bids/mine/header`);
        // The file key is computed only from the header the bidder's own receipt pins.
        const mismatch = sealing.servedHeaderProblem(header, receipt);
        if (mismatch) throw new sealing.SealingRefused(...mismatch);
        let fileKey;
        try {
          fileKey = await sealing.revealFileKey(header, identity);
        } catch {
          throw new sealing.SealingRefused("bid_reveal_wrong_identity");
        }
        const outcome = await api(`/tenders/${tender.id}/opening/reveal`, { method: "POST", json: { file_key: fileKey } });
        stopClock();
        revealBox.replaceChildren(title, h("div", { class: "outcome" }, outcomeNotice(outcome)), hall);
      } catch (error) {
        const tries = error instanceof ApiError ? error.body?.tries_left : undefined;
        put(
          message,
          notice(t("bid_reveal_refused", { reason: errorText(error) }), "error"),
          tries !== undefined ? h("p", {}, t("bid_reveal_tries", { n: tries })) : null,
        );
        button.disabled = false;
      }
    });
    revealBox.replaceChildren(
      title,
      h("p", {}, t("bid_reveal_open", { at: when(closesAt) }), clock),
      h("p", { class: "lead" }, t("bid_reveal_text")),
      form,
      hall,
    );
  }

  // -- the page, redrawn when the tender moves on (the deadline, the window) --

  const [clock, stopClock] = countdown(tender.bid_deadline);
  stops.add(stopClock);
  const facts = h("div", {});
  const savedBox = savedReceiptBox();

  async function draw() {
    facts.replaceChildren(tenderFacts(tender));
    drawForm();
    await refreshMine();
    // Bidder mode: the reveal during the window, and its outcome once the opening moves on.
    revealBox.hidden = !(tender.opening_mode === "bidder" && ["opening", "opened", "failed"].includes(tender.status));
    if (!revealBox.hidden) await drawReveal();
  }

  main.replaceChildren(
    h(
      "div",
      { class: "bid-page" },
      h("a", { href: `#/tenders/${tender.id}` }, t("bid_back")),
      h("h2", {}, t("bid_title", { title: tender.title })),
      h("p", { class: "countdown-line" }, `${t("countdown")}: `, clock),
      h("details", { class: "card facts-box", open: true }, h("summary", {}, t("bid_facts")), facts),
      revealBox,
      mineBox,
      receiptBox,
      formBox,
      savedBox,
    ),
  );
  await draw();

  // After the deadline the tender moves on by itself: follow it while the bidder watches.
  let formOpen = takesBids();
  every(1000, () => {
    if (left || busy) return;
    if (formOpen && !takesBids()) {
      formOpen = false;
      drawForm();
      refreshMine().catch(() => null);
    }
  });
  const moving = () =>
    tender.status === "opening" || (tender.status === "published" && serverNow() >= Date.parse(tender.bid_deadline));
  every(POLL_MS, async () => {
    if (left || busy || !moving()) return;
    try {
      const fresh = await loadTender(tender.id);
      if (left || fresh.status === tender.status) return;
      tender = fresh;
      await draw();
    } catch {
      // looked again at the next tick
    }
  });

  return () => {
    left = true;
    for (const stop of stops) stop();
    stopRevealPoll?.();
    for (const dialog of dialogs) dialog.remove();
  };
}

// --- the organization's decryption key -----------------------------------------------------

function identityFilename(user) {
  const name = (user.organization?.name ?? "").replace(/[\\/:*?"<>|\s]+/g, "-").replace(/^-+|-+$/g, "");
  return `${name || "organization"}-age-identity.txt`;
}

async function showKeys({ main, user }) {
  if (!user) return signInFirst(main, "/keys", t("bid_keys_sign_in"));
  if (user.role !== "bidder") return notBidder(main, user);
  const currentBox = h("section", { class: "card key-box", "aria-labelledby": "bid-keys-current-title" });
  const generateBox = h("section", { class: "card", "aria-labelledby": "bid-keys-generate-title" });
  const checkBox = h("section", { class: "card", "aria-labelledby": "bid-keys-check-title" });
  let keys = { current: null, history: [] };

  async function refresh() {
    keys = await api("/me/keys");
    const { current, history } = keys;
    const parts = [h("h3", { id: "bid-keys-current-title" }, t("bid_keys_current"))];
    if (!current) {
      parts.push(h("p", {}, t("bid_keys_none")));
    } else {
      parts.push(
        h(
          "dl",
          {},
          h("dt", {}, t("bid_keys_recipient")),
          h("dd", {}, h("code", { class: "recipient" }, current.recipient)),
          h("dt", {}, t("bid_keys_registered")),
          h("dd", {}, when(current.registered_at)),
          h("dt", {}, t("bid_keys_verified")),
          h(
            "dd",
            { class: current.verified_at ? "verified" : "unverified" },
            current.verified_at ? `✓ ${t("bid_keys_verified_at", { at: when(current.verified_at) })}` : t("bid_keys_not_verified"),
          ),
        ),
      );
    }
    if (history.length) {
      parts.push(
        h("h4", {}, t("bid_keys_history")),
        h(
          "div",
          { class: "table-scroll" },
          h(
            "table",
            { class: "receipts" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, t("bid_keys_recipient")),
                h("th", { scope: "col" }, t("bid_keys_registered")),
                h("th", { scope: "col" }, t("bid_keys_retired")),
              ),
            ),
            h(
              "tbody",
              {},
              ...history.map((key) =>
                h(
                  "tr",
                  {},
                  h("td", {}, h("code", {}, key.recipient)),
                  h("td", {}, when(key.registered_at)),
                  h("td", {}, when(key.retired_at)),
                ),
              ),
            ),
          ),
        ),
      );
    }
    currentBox.replaceChildren(...parts);
  }

  function drawGenerate() {
    const message = h("div", { "aria-live": "polite" });
    const generate = h("button", { type: "button" }, t("bid_keys_generate"));
    const made = h("div", {});
    generate.addEventListener("click", async () => {
      generate.disabled = true;
      try {
        const { identity, recipient } = await sealing.newIdentity();
        let saved = false;
        const registerHint = h("small", { id: "bid-keys-register-hint" }, t("bid_keys_register_first"));
        const register = h("button", { type: "button", disabled: true, "aria-describedby": registerHint.id }, t("bid_keys_register"));
        const save = h("button", { type: "button" }, t("bid_keys_download"));
        save.addEventListener("click", () => {
          const created = new Date(serverNow()).toISOString().replace(/\.\d+Z$/, "Z");
          download(identityFilename(user), sealing.identityFileText(identity, recipient, created), "text/plain");
          saved = true;
          register.disabled = false;
          registerHint.hidden = true;
        });
        register.addEventListener("click", async () => {
          if (!saved) return;
          register.disabled = true;
          try {
            await api("/me/keys", { method: "PUT", json: { recipient } });
            await refresh();
            drawGenerate();
            drawCheck(notice(t("bid_keys_registered_done"), "ok"));
            checkBox.querySelector("input")?.focus();
          } catch (error) {
            message.replaceChildren(notice(t("bid_failed", { reason: errorText(error) }), "error"));
            register.disabled = false;
          }
        });
        made.replaceChildren(
          notice(t("bid_keys_generated"), "ok"),
          h("dl", {}, h("dt", {}, t("bid_keys_recipient")), h("dd", {}, h("code", { class: "recipient" }, recipient))),
          notice(t("bid_keys_keep"), "error"),
          h("div", { class: "actions" }, save, register),
          registerHint,
        );
        save.focus();
      } catch (error) {
        message.replaceChildren(notice(t("bid_failed", { reason: errorText(error) }), "error"));
      } finally {
        generate.disabled = false;
      }
    });
    put(
      generateBox,
      h("h3", { id: "bid-keys-generate-title" }, t("bid_keys_generate_title")),
      keys.current ? notice(t("bid_keys_replace_warning")) : null,
      h("div", { class: "actions" }, generate),
      made,
      message,
    );
  }

  function drawCheck(intro = null) {
    if (!keys.current) {
      checkBox.hidden = true;
      return;
    }
    checkBox.hidden = false;
    const picker = h("input", { type: "file", id: "bid-keys-identity", accept: ".txt,.key,text/plain" });
    const button = h("button", { type: "submit" }, t("bid_keys_check"));
    const message = h("div", { "aria-live": "assertive" });
    const form = h("form", {}, field(t("bid_keys_check_file"), picker), h("div", { class: "actions" }, button), message);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      message.replaceChildren();
      const file = picker.files[0];
      if (!file) {
        message.replaceChildren(notice(t("bid_refuse_identity_file"), "error"));
        picker.focus();
        return;
      }
      button.disabled = true;
      try {
        const identity = sealing.identityFromText(await file.text());
        const mine = await sealing.recipientOf(identity);
        const registered = keys.current?.recipient;
        if (mine !== registered) throw new Error(t("bid_keys_check_other", { mine, registered }));
        const { challenge } = await api("/me/keys/challenge", { method: "POST" });
        const answer = await sealing.unsealText(sealing.fromBase64(challenge), identity);
        await api("/me/keys/challenge/answer", { method: "POST", json: { answer } });
        await refresh();
        checkBox.querySelector(".notice.ok")?.remove(); // "registered, now check it" is done
        message.replaceChildren(notice(t("bid_keys_check_ok"), "ok"));
      } catch (error) {
        message.replaceChildren(notice(t("bid_keys_check_failed", { reason: errorText(error) }), "error"));
      } finally {
        button.disabled = false;
      }
    });
    put(
      checkBox,
      h("h3", { id: "bid-keys-check-title" }, t("bid_keys_check_title")),
      intro,
      h("p", { class: "lead" }, t("bid_keys_check_text")),
      form,
    );
  }

  await refresh();
  main.replaceChildren(
    h(
      "div",
      { class: "bid-page" },
      h("h2", {}, t("bid_keys_title")),
      h("p", { class: "lead" }, t("bid_keys_intro")),
      currentBox,
      checkBox,
      generateBox,
    ),
  );
  drawGenerate();
  drawCheck();
}

export const routes = [
  [/^\/tenders\/([0-9a-f-]{36})\/bid$/, showBid],
  [/^\/keys$/, showKeys],
];
