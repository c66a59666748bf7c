/* The bottleneck explorer's issue list (dashboards/explorer.py): an issue's number links to
   its trace. The number is written as text by React, never as markup. */
window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {};

window.dashAgGridComponentFunctions.IssueLink = function (props) {
    if (props.value === null || props.value === undefined) {
        return null;
    }
    const id = String(props.value);
    const lang = props.lang === "en" ? "en" : "zh";
    return React.createElement("a", {
        href: "/issue/" + encodeURIComponent(id) + "?lang=" + lang,
        className: "explorer-issue-link",
    }, id);
};
